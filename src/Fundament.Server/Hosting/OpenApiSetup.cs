using Microsoft.AspNetCore.Authorization;
using Microsoft.OpenApi;

namespace Fundament.Server.Hosting;

internal static class OpenApiSetup
{
    private const string ProblemSchema = "ProblemDetails";

    private static readonly Dictionary<string, string> TagDescriptions = new(StringComparer.Ordinal)
    {
        ["Discovery"] = "OpenID Connect discovery and the token signing keys.",
        ["Authentication"] = "Sign-in, token refresh, sign-out and password reset.",
        ["Me"] = "The signed-in caller: profile, sessions, password, quotas.",
        ["Users"] = "User accounts and their roles.",
        ["Roles"] = "Built-in and custom roles and the permissions they grant.",
        ["Clients"] = "Service clients (OAuth2 client credentials) and their secrets.",
        ["API keys"] = "Long-lived API keys of the signed-in caller.",
        ["Quotas"] = "Limits on what one user or client may use, and overrides by role, user or client.",
        ["Audit"] = "The tamper-evident audit log: query and verify.",
        ["Vault"] = "Versioned, encrypted secrets, their metadata and access policies.",
        ["Configuration"] = "Live configuration by service and environment, with history, schemas and watches.",
        ["Registry"] = "Service instances, health checks, route claims and discovery.",
        ["Gateway"] = "Gateway policies: rate limits and CORS.",
        ["Deliveries"] = "Outbound webhook and alert deliveries and their attempts.",
        ["Webhooks"] = "Webhook subscriptions (Standard Webhooks signatures).",
        ["Event store"] = "Streams of events: appends with an expected version, idempotent by event id and atomic across streams; reads by stream and of every stream in commit order ($all); grants by stream prefix.",
        ["Messaging"] = "Topics and consumer groups: publish (durable before the 202, deduplicated by id), pull under leases, ack and nack with backoff, ordered keys, dead letters that keep their key order with replay and purge; grants by topic prefix.",
        ["Cluster"] = "The nodes of the cluster: roles, versions, heartbeats and status (alive, suspect, gone), the leases each holds for the duties one node does at a time, and forgetting a drained node.",
        ["Backup"] = "Backups the platform takes itself (on Fundament:Backup:Schedule or on request): the schedule, the next run, the last good backup, and each run with its outcome, verification and pruning. Taking, verifying and restoring backups by hand is the fundament backup / restore command.",
        ["Analysis"] = "What the analysis pipeline found in an asset once it became ready: OCR text, a caption and tags from a vision model, a fused description from a language model, an image embedding. Each stage's state, attempts and reason, retry, full-text search and similar images.",
        ["GPU"] = "GPU offers from the configured clouds (Vast.ai, Lambda Cloud, RunPod), pools with constraints and budgets and their cost forecast, placement with failover, and the decision log with every rejected offer and why.",
        ["Alerts"] = "Alert rules, channels and firing alerts.",
        ["Jobs"] = "The durable job queue: jobs, their state and retries.",
        ["Media uploads (tus)"] = "Resumable uploads over the tus 1.0 protocol.",
        ["Media policies"] = "Media lifecycle policies: retention and tiering.",
        ["Media"] = "Media assets: upload, metadata, content, derivatives and search.",
    };

    private static void AddProblem(OpenApiOperation operation, Microsoft.AspNetCore.OpenApi.OpenApiOperationTransformerContext context, string status, string description)
    {
        if (operation.Responses!.ContainsKey(status))
        {
            return;
        }
        operation.Responses[status] = new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, context.Document) },
            },
        };
    }

    /// <summary>One document for every module's API at <c>/openapi/v1.json</c>.</summary>
    public static IServiceCollection AddFundamentOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Fundament",
                    Version = "v1",
                    Description = "Identity, audit and the platform APIs of Fundament. Authenticate with 'Authorization: Bearer <jwt>' (from /api/v1/auth/login or /oauth2/token) or 'Authorization: ApiKey <key>'. Errors are RFC 9457 problem details.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme { Type = SecuritySchemeType.Http, Scheme = "bearer", BearerFormat = "JWT" };
                document.Components.SecuritySchemes["apiKey"] = new OpenApiSecurityScheme { Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "Authorization", Description = "ApiKey <key>" };
                document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
                document.Components.Schemas.TryAdd(ProblemSchema, new OpenApiSchema
                {
                    Type = JsonSchemaType.Object,
                    Description = "RFC 9457 problem details. Some problems add members (errors, quota, limit, ...).",
                    Properties = new Dictionary<string, IOpenApiSchema>
                    {
                        ["type"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
                        ["title"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
                        ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer | JsonSchemaType.Null, Format = "int32" },
                        ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
                        ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
                    },
                });
                // The address a client uses is its own business (a gateway, a load balancer): the
                // server is relative, so the document reads the same wherever it is served (docs/openapi.json).
                document.Servers = [new OpenApiServer { Url = "/" }];
                AnyJson.Apply(document);
                foreach (var tag in document.Tags ?? new HashSet<OpenApiTag>())
                {
                    if (TagDescriptions.TryGetValue(tag.Name ?? "", out var description))
                    {
                        tag.Description = description;
                    }
                }
                return Task.CompletedTask;
            });
            options.AddOperationTransformer((operation, context, _) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                var anonymous = metadata.OfType<IAllowAnonymous>().Any() || (!metadata.OfType<IAuthorizeData>().Any() && !metadata.OfType<AuthorizationPolicy>().Any());
                // Every operation says how to call it; an empty list marks the public ones.
                operation.Security = anonymous
                    ? []
                    :
                    [
                        new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", context.Document)] = [] },
                        new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("apiKey", context.Document)] = [] },
                    ];
                // GET and HEAD share a handler (and so a name); the HEAD operation gets its own.
                if (string.Equals(context.Description.HttpMethod, "HEAD", StringComparison.OrdinalIgnoreCase) && operation.OperationId is { } id)
                {
                    operation.OperationId = "Head" + (id.StartsWith("Get", StringComparison.Ordinal) ? id[3..] : id);
                }
                // The errors every operation of its kind can answer, as problem details.
                operation.Responses ??= [];
                if (operation.Parameters is { Count: > 0 } || operation.RequestBody is not null)
                {
                    AddProblem(operation, context, "400", "The request is invalid: the problem names each field.");
                }
                if (!anonymous)
                {
                    AddProblem(operation, context, "401", "No credential, or one that is invalid, expired or revoked.");
                    AddProblem(operation, context, "403", "The caller lacks the permission (or policy) the operation needs.");
                }
                if (operation.Parameters?.Any(p => p.In == ParameterLocation.Path) == true)
                {
                    AddProblem(operation, context, "404", "Nothing by that name or id, or nothing the caller may see.");
                }
                return Task.CompletedTask;
            });
            // The upload reads its multipart body itself (streamed, never buffered), so the body is described here.
            options.AddOperationTransformer((operation, context, _) =>
            {
                if (operation.OperationId == "UploadMedia")
                {
                    operation.RequestBody = new OpenApiRequestBody
                    {
                        Required = true,
                        Content = new Dictionary<string, OpenApiMediaType>
                        {
                            ["multipart/form-data"] = new()
                            {
                                Schema = new OpenApiSchema
                                {
                                    Type = JsonSchemaType.Object,
                                    Required = new HashSet<string> { "file" },
                                    Properties = new Dictionary<string, IOpenApiSchema>
                                    {
                                        ["file"] = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "The file; its type is read from its content." },
                                        ["title"] = new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = 200 },
                                        ["tags"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "Comma-separated, or the field repeated." },
                                    },
                                },
                            },
                        },
                    };
                }
                return Task.CompletedTask;
            });
        });

    /// <summary>
    /// Values that are any JSON (a secret's value, configuration values, routes) are
    /// <see cref="System.Text.Json.JsonElement"/>s in the code. The generator describes that type as an
    /// empty object component, and a nullable one as a oneOf of null and it, which client generators
    /// turn into an empty class. Both become the empty schema: any JSON value, null included.
    /// </summary>
    private static class AnyJson
    {
        private const string Component = "JsonElement";

        public static void Apply(OpenApiDocument document)
        {
            foreach (var schema in document.Components?.Schemas?.Values.AsEnumerable() ?? [])
            {
                Walk(schema);
            }
            foreach (var operation in document.Paths.Values.SelectMany(p => p.Operations?.Values.AsEnumerable() ?? []))
            {
                foreach (var media in (operation.RequestBody?.Content?.Values.AsEnumerable() ?? []).Concat((operation.Responses?.Values.AsEnumerable() ?? []).SelectMany(r => r.Content?.Values.AsEnumerable() ?? [])))
                {
                    if (media.Schema is { } schema && IsAnyJson(schema))
                    {
                        media.Schema = new OpenApiSchema();
                    }
                    else if (media.Schema is not null)
                    {
                        Walk(media.Schema);
                    }
                }
            }
            document.Components?.Schemas?.Remove(Component);
        }

        private static bool IsAnyJson(IOpenApiSchema schema) => schema switch
        {
            OpenApiSchemaReference reference => reference.Reference.Id == Component,
            OpenApiSchema { OneOf: [var a, var b] } => (IsNull(a) && IsAnyJson(b)) || (IsNull(b) && IsAnyJson(a)),
            _ => false,
        };

        private static bool IsNull(IOpenApiSchema schema) => schema is OpenApiSchema { Type: JsonSchemaType.Null };

        private static void Walk(IOpenApiSchema schema)
        {
            if (schema is not OpenApiSchema owned)
            {
                return;
            }
            if (owned.Properties is { } properties)
            {
                foreach (var name in properties.Keys.ToList())
                {
                    if (IsAnyJson(properties[name]))
                    {
                        properties[name] = new OpenApiSchema();
                    }
                    else
                    {
                        Walk(properties[name]);
                    }
                }
            }
            if (owned.Items is { } items)
            {
                if (IsAnyJson(items))
                {
                    owned.Items = new OpenApiSchema();
                }
                else
                {
                    Walk(items);
                }
            }
            if (owned.AdditionalProperties is { } additional)
            {
                if (IsAnyJson(additional))
                {
                    owned.AdditionalProperties = new OpenApiSchema();
                }
                else
                {
                    Walk(additional);
                }
            }
            foreach (var list in new[] { owned.OneOf, owned.AnyOf, owned.AllOf })
            {
                foreach (var item in list ?? [])
                {
                    Walk(item);
                }
            }
        }
    }
}
