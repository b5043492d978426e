using System.Globalization;
using System.Text;
using System.Text.Json;
using Fundament.Core.Quotas;
using Fundament.Core.Watch;

namespace Fundament.Config;

internal static class ConfigApi
{
    public static RouteGroupBuilder MapConfigApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/config").WithTags("Configuration");
        group.MapPut("/entries", SetAsync).RequireAuthorization(ConfigPermissions.Write).WithName("SetConfigEntry")
            .WithSummary("Sets a value for (service or *, environment or *, key); validated against the schemas of the key's prefixes.");
        group.MapGet("/entries", ListAsync).RequireAuthorization(ConfigPermissions.Read).WithName("ListConfigEntries")
            .WithSummary("Entries by service, environment and key; filter by service, environment and key prefix. A page at a time: limit (1-500, default 100) "
                + "and after (the cursor in the Link rel=next header).");
        group.MapDelete("/entries", DeleteAsync).RequireAuthorization(ConfigPermissions.Write).WithName("DeleteConfigEntry").WithSummary("Delete a configuration entry");
        group.MapGet("/resolved", ResolvedAsync).RequireAuthorization(Policies.Authenticated).WithName("ResolvedConfig")
            .WithSummary("The overlay (*,*) < (*,env) < (service,*) < (service,env). With index=N&wait=30s the answer waits for a change past N. "
                + "Needs config.read, or config.read.own for a service client reading the service named like it.");
        group.MapGet("/history", HistoryAsync).RequireAuthorization(ConfigPermissions.Read).WithName("ConfigHistory")
            .WithSummary("A key's versions, newest first, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header: a version).");
        group.MapPost("/rollback", RollbackAsync).RequireAuthorization(ConfigPermissions.Write).WithName("RollbackConfigEntry")
            .WithSummary("Sets a key back to the value of an earlier version (as a new version).");
        group.MapPut("/schemas", SetSchemaAsync).RequireAuthorization(ConfigPermissions.Write).WithName("SetConfigSchema").WithSummary("Set the JSON schema for a key prefix");
        group.MapGet("/schemas", ListSchemasAsync).RequireAuthorization(ConfigPermissions.Read).WithName("ListConfigSchemas")
            .WithSummary("Schemas by key prefix, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapDelete("/schemas", DeleteSchemaAsync).RequireAuthorization(ConfigPermissions.Write).WithName("DeleteConfigSchema").WithSummary("Delete the JSON schema of a key prefix");
        return group;
    }

    private static async Task<Results<Ok<ConfigEntryResponse>, ValidationProblem>> SetAsync(
        ConfigEntryRequest request, IDatabase database, ConfigStore store, ConfigSchemas schemas, IOptions<ConfigOptions> options, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = ValidateScope(request.Service, request.Environment, request.Key);
        if (request.Value is not { ValueKind: not JsonValueKind.Undefined } value)
        {
            errors.Add("value", "value is required (any JSON value, null included).");
            value = default;
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var json = value.GetRawText();
        if (Encoding.UTF8.GetByteCount(json) > options.Value.MaxValueBytes)
        {
            return Problems.Validation("value", $"value must be at most {options.Value.MaxValueBytes} bytes of JSON.");
        }
        var violations = await schemas.ValidateAsync(request.Key!, json, cancellationToken);
        if (violations.Count > 0)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["value"] = violations.ToArray() });
        }
        var entry = await database.InUnitOfWorkAsync(async () =>
        {
            var entry = await store.SetAsync(request.Service!, request.Environment!, request.Key!, json, "set", context.User.ActorId() ?? "unknown", cancellationToken);
            await AuditAsync(audit, context, "config.set", entry.Service, entry.Environment, entry.Key, entry.Version, cancellationToken);
            return entry;
        }, cancellationToken);
        return TypedResults.Ok(entry);
    }

    private static async Task<Results<Ok<IReadOnlyList<ConfigEntryResponse>>, ValidationProblem>> ListAsync(
        string? service, string? environment, string? prefix, int? limit, string? after, ConfigStore store, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (service is not null && ConfigScope.NameProblem("service", service, allowAny: true) is { } s)
        {
            errors.Add("service", s);
        }
        if (environment is not null && ConfigScope.NameProblem("environment", environment, allowAny: true) is { } e)
        {
            errors.Add("environment", e);
        }
        errors.MaxLength("prefix", prefix, 200);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(Paging.Page(context, await store.ListAsync(service, environment, prefix, after, Paging.Take(size), cancellationToken), size, ConfigStore.EntryCursor));
    }

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> DeleteAsync(
        string? service, string? environment, string? key, IDatabase database, ConfigStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = ValidateScope(service, environment, key);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var deleted = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await store.DeleteAsync(service!, environment!, key!, context.User.ActorId() ?? "unknown", cancellationToken))
            {
                return false;
            }
            await AuditAsync(audit, context, "config.delete", service!, environment!, key!, null, cancellationToken);
            return true;
        }, cancellationToken);
        return deleted ? TypedResults.NoContent() : Problems.NotFound("The entry");
    }

    private static async Task<Results<Ok<ResolvedConfig>, ValidationProblem, ProblemHttpResult>> ResolvedAsync(
        string? service, string? environment, long? index, string? wait, ConfigStore store, WatchSlots watches, TimeProvider time, IRolePermissions permissions, HttpContext context, CancellationToken cancellationToken)
    {
        environment ??= ConfigScope.Any;
        var errors = new ValidationErrors();
        if (ConfigScope.NameProblem("service", service, allowAny: true) is { } s)
        {
            errors.Add("service", s);
        }
        if (ConfigScope.NameProblem("environment", environment, allowAny: true) is { } e)
        {
            errors.Add("environment", e);
        }
        var waitFor = BlockingQuery.ParseWait(wait, out var waitError);
        if (waitError is not null)
        {
            errors.Add("wait", waitError);
        }
        if (index is < 0)
        {
            errors.Add("index", "index must not be negative.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (!await MayReadAsync(context.User, service!, permissions, cancellationToken))
        {
            return Problems.Forbidden(
                $"Reading configuration needs {ConfigPermissions.Read} (every service), or {ConfigPermissions.ReadOwn} for a service client reading the service named like it.");
        }
        if (index is { } known)
        {
            using (await watches.AcquireAsync(QuotaSubject.Of(context.User), cancellationToken))
            {
                await BlockingQuery.WaitAsync(ct => store.IndexAsync(service!, environment, ct), known, waitFor!.Value, store.Changes, time, cancellationToken);
            }
        }
        // A watch reads what it waited for, uncached; a plain read goes through the cache.
        var resolved = index is null ? await store.ResolveCachedAsync(service!, environment, cancellationToken) : await store.ResolveAsync(service!, environment, cancellationToken);
        BlockingQuery.SetIndex(context.Response, resolved.Index);
        return TypedResults.Ok(resolved);
    }

    private static async Task<Results<Ok<IReadOnlyList<ConfigHistoryEntry>>, ValidationProblem>> HistoryAsync(
        string? service, string? environment, string? key, int? limit, string? after, ConfigStore store, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = ValidateScope(service, environment, key);
        var size = Paging.Validate(errors, limit, after);
        // The cursor is the version of the last entry seen; the next page holds the older ones.
        long? before = null;
        if (after is { Length: <= Paging.MaxAfterLength })
        {
            if (long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            {
                before = version;
            }
            else
            {
                errors.Add(Paging.AfterParameter, "after must be a version, the cursor from this list's Link header.");
            }
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var rows = await store.HistoryAsync(service!, environment!, key!, before, Paging.Take(size), cancellationToken);
        return TypedResults.Ok(Paging.Page(context, rows, size, h => h.Version.ToString(CultureInfo.InvariantCulture)));
    }

    private static async Task<Results<Ok<ConfigEntryResponse>, NoContent, ValidationProblem, ProblemHttpResult>> RollbackAsync(
        ConfigRollbackRequest request, IDatabase database, ConfigStore store, ConfigSchemas schemas, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = ValidateScope(request.Service, request.Environment, request.Key);
        if (request.Version is not > 0)
        {
            errors.Add("version", "version is required.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var target = await store.HistoryVersionAsync(request.Service!, request.Environment!, request.Key!, request.Version!.Value, cancellationToken);
        if (target is null)
        {
            return Problems.NotFound($"Version {request.Version} of the key");
        }
        var actor = context.User.ActorId() ?? "unknown";
        if (target.Value is not { } value)
        {
            // That version was a deletion: rolling back to it deletes the key again.
            await database.InUnitOfWorkAsync(async () =>
            {
                await store.DeleteAsync(request.Service!, request.Environment!, request.Key!, actor, cancellationToken);
                await AuditAsync(audit, context, "config.rollback", request.Service!, request.Environment!, request.Key!, request.Version, cancellationToken);
                return 0;
            }, cancellationToken);
            return TypedResults.NoContent();
        }
        var json = value.GetRawText();
        var violations = await schemas.ValidateAsync(request.Key!, json, cancellationToken);
        if (violations.Count > 0)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["version"] = violations.Select(v => "that version violates today's schema: " + v).ToArray() });
        }
        var entry = await database.InUnitOfWorkAsync(async () =>
        {
            var entry = await store.SetAsync(request.Service!, request.Environment!, request.Key!, json, $"rollback:{request.Version}", actor, cancellationToken);
            await AuditAsync(audit, context, "config.rollback", entry.Service, entry.Environment, entry.Key, entry.Version, cancellationToken);
            return entry;
        }, cancellationToken);
        return TypedResults.Ok(entry);
    }

    private static async Task<Results<Ok<ConfigSchemaResponse>, ValidationProblem>> SetSchemaAsync(
        ConfigSchemaRequest request, IDatabase database, ConfigStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("keyPrefix", request.KeyPrefix).MaxLength("keyPrefix", request.KeyPrefix, 200);
        if (request.Schema is not { ValueKind: JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False } schema)
        {
            errors.Add("schema", "schema must be a JSON Schema object.");
            schema = default;
        }
        else if (await ConfigSchemas.ProblemAsync(schema.GetRawText()) is { } problem)
        {
            errors.Add("schema", problem);
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var actor = context.User.ActorId() ?? "unknown";
        await database.InUnitOfWorkAsync(async () =>
        {
            await store.SetSchemaAsync(request.KeyPrefix!, schema.GetRawText(), actor, cancellationToken);
            await audit.AppendAsync(new AuditEvent("config.schema_set", AuditOutcome.Success) { Target = $"config_schema:{request.KeyPrefix}" }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.Ok((await store.ListSchemasAsync(cancellationToken)).Single(s => s.KeyPrefix == request.KeyPrefix));
    }

    private static async Task<Results<Ok<IReadOnlyList<ConfigSchemaResponse>>, ValidationProblem>> ListSchemasAsync(
        int? limit, string? after, ConfigStore store, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(Paging.Page(context, await store.ListSchemasAsync(after, Paging.Take(size), cancellationToken), size, s => s.KeyPrefix));
    }

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> DeleteSchemaAsync(
        string? keyPrefix, IDatabase database, ConfigStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(keyPrefix) || keyPrefix.Length > 200)
        {
            return Problems.Validation("keyPrefix", "keyPrefix is required.");
        }
        var deleted = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await store.DeleteSchemaAsync(keyPrefix, cancellationToken))
            {
                return false;
            }
            await audit.AppendAsync(new AuditEvent("config.schema_delete", AuditOutcome.Success) { Target = $"config_schema:{keyPrefix}" }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        return deleted ? TypedResults.NoContent() : Problems.NotFound("The schema");
    }

    /// <summary>
    /// <c>config.read</c> reads every service's configuration (operators, the console).
    /// <c>config.read.own</c> lets a service client read only the service named like the client, so
    /// one service's token does not expose another's settings. It is a permission (granted through a
    /// role, which only a holder can hand out), not implied by the name alone: whoever may create
    /// clients must not be able to read any service's settings by naming a client after it.
    /// </summary>
    internal static async Task<bool> MayReadAsync(System.Security.Claims.ClaimsPrincipal user, string service, IRolePermissions permissions, CancellationToken cancellationToken)
    {
        var held = await permissions.PermissionsOfAsync(user.RolesOf(), cancellationToken);
        if (held.Contains(Permissions.All) || held.Contains(ConfigPermissions.Read))
        {
            return true;
        }
        return held.Contains(ConfigPermissions.ReadOwn) && user.ClientIdOf() is not null && service != ConfigScope.Any
            && string.Equals(user.FindFirst(FundamentClaims.Name)?.Value, service, StringComparison.Ordinal);
    }

    private static ValidationErrors ValidateScope(string? service, string? environment, string? key)
    {
        var errors = new ValidationErrors();
        if (ConfigScope.NameProblem("service", service, allowAny: true) is { } s)
        {
            errors.Add("service", s);
        }
        if (ConfigScope.NameProblem("environment", environment, allowAny: true) is { } e)
        {
            errors.Add("environment", e);
        }
        if (ConfigScope.KeyProblem(key) is { } k)
        {
            errors.Add("key", k);
        }
        return errors;
    }

    private static Task AuditAsync(IAuditLog audit, HttpContext context, string action, string service, string environment, string key, int? version, CancellationToken cancellationToken) =>
        audit.AppendAsync(new AuditEvent(action, AuditOutcome.Success)
        {
            Target = $"config:{service}/{environment}/{key}",
            Details = version is { } v ? new Dictionary<string, string> { ["version"] = v.ToString(CultureInfo.InvariantCulture) } : null,
        }.From(context), cancellationToken);
}

/// <summary>Body of <c>PUT /api/v1/config/entries</c>. All fields required; service and environment may be <c>*</c>.</summary>
public sealed record ConfigEntryRequest(string? Service, string? Environment, string? Key, JsonElement? Value);

/// <summary>Body of <c>POST /api/v1/config/rollback</c>.</summary>
public sealed record ConfigRollbackRequest(string? Service, string? Environment, string? Key, int? Version);

/// <summary>Body of <c>PUT /api/v1/config/schemas</c>: a JSON Schema for every key starting with <see cref="KeyPrefix"/>.</summary>
public sealed record ConfigSchemaRequest(string? KeyPrefix, JsonElement? Schema);
