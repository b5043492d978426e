using Microsoft.OpenApi;

namespace Fundament.Server.Hosting;

internal static class OpenApiSetup
{
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
}
