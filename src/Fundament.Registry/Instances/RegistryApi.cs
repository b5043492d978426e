using System.Security.Claims;
using System.Text.Json;
using Fundament.Core.Egress;
using Fundament.Core.Quotas;
using Fundament.Core.Watch;
using Fundament.Registry.Routes;

namespace Fundament.Registry.Instances;

internal static partial class RegistryApi
{
    public static RouteGroupBuilder MapRegistryApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/registry").WithTags("Registry");
        group.MapPost("/instances", RegisterAsync).RequireAuthorization(Policies.Authenticated).WithName("RegisterInstance")
            .WithSummary("Registers (or re-registers) an instance; service clients may register only service names granted to them (their own client name is).");
        group.MapPut("/instances/{id}/heartbeat", HeartbeatAsync).RequireAuthorization(Policies.Authenticated).WithName("Heartbeat")
            .WithSummary("Keeps a TTL-checked instance passing; optional body {status, output}.");
        group.MapDelete("/instances/{id}", DeregisterAsync).RequireAuthorization(Policies.Authenticated).WithName("DeregisterInstance").WithSummary("Deregister an instance");
        group.MapGet("/instances/{id}", GetAsync).RequireAuthorization(RegistryPermissions.Read).WithName("GetInstance").WithSummary("Get an instance and its status");
        group.MapGet("/instances/{id}/history", HistoryAsync).RequireAuthorization(RegistryPermissions.Read).WithName("InstanceStatusHistory").WithSummary("An instance's status history");
        group.MapGet("/services", ServicesAsync).RequireAuthorization(RegistryPermissions.Read).WithName("ListServices")
            .WithSummary("Instances per service by status, services by name. Blocking watch with index and wait; "
                + "a page at a time after the wait: limit (1-500, default 100) and after (the cursor in the Link rel=next header, which drops index and wait).");
        group.MapGet("/services/{name}/instances", InstancesAsync).RequireAuthorization(RegistryPermissions.Read).WithName("ListServiceInstances")
            .WithSummary("Instances of a service by id; healthy=true keeps passing ones, tag filters. Blocking watch with index and wait; "
                + "a page at a time after the wait: limit (1-500, default 100) and after (the cursor in the Link rel=next header, which drops index and wait).");
        group.MapPost("/grants", GrantAsync).RequireAuthorization(RegistryPermissions.Write).WithName("GrantServiceName")
            .WithSummary("Lets a service client register instances under a service name.");
        group.MapGet("/grants", GrantsAsync).RequireAuthorization(RegistryPermissions.Write).WithName("ListGrants")
            .WithSummary("Grants by client id, then service, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapDelete("/grants", RevokeGrantAsync).RequireAuthorization(RegistryPermissions.Write).WithName("RevokeGrant").WithSummary("Revoke a registry grant");
        group.MapRouteClaimsApi();
        return group;
    }

    /// <summary>What registration needs besides the request.</summary>
    internal sealed record RegistrationServices(
        IDatabase Database,
        RegistryStore Store,
        RouteClaimStore Claims,
        IEnumerable<IRouteValidator> RouteValidators,
        EgressGuard Egress,
        IRolePermissions Permissions,
        IOptions<RegistryOptions> Options,
        IAuditLog Audit,
        IServiceProvider Services,
        ILogger<RegistrationServices> Logger);

    /// <remarks>
    /// 1. The instance's own fields (400), including an address the egress policy refuses.
    /// 2. Whether the caller may register this service at all (403).
    /// 3. Whether every route lies inside the service's claims (403 naming each route and the claim it lacks).
    /// 4. Every route field, with the same parser the gateway uses (400 listing each problem).
    /// Then the instance is stored; a passthrough route is logged and audited.
    /// </remarks>
    private static async Task<Results<Created<RegisterResponse>, ValidationProblem, ProblemHttpResult>> RegisterAsync(
        RegisterRequest request, [AsParameters] RegistrationServices s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var definition = Validate(request, s.Options.Value, errors);
        if (definition is not null && s.Egress.CheckTarget(EgressPurpose.Upstreams, definition.Address, definition.Port) is { Allowed: false } refused)
        {
            errors.Add("address", $"address is not allowed: {refused.Reason}.");
            await s.Audit.AppendAsync(new AuditEvent("registry.register", AuditOutcome.Denied)
            {
                Target = $"service:{definition.Service}",
                Details = new Dictionary<string, string> { ["reason"] = "egress", ["address"] = $"{definition.Address}:{definition.Port}" },
            }.From(context), cancellationToken);
        }
        if (definition is null || errors.Any)
        {
            return errors.ToProblem();
        }
        if (definition.Service == RoutePaths.FundamentService)
        {
            return Problems.Forbidden($"Service '{RoutePaths.FundamentService}' is registered by Fundament's own nodes (Fundament:Registry:Self), never through the API.");
        }
        if (!await MayRegisterAsync(context.User, definition.Service, s.Store, s.Permissions, cancellationToken))
        {
            await s.Audit.AppendAsync(new AuditEvent("registry.register", AuditOutcome.Denied) { Target = $"service:{definition.Service}" }.From(context), cancellationToken);
            return Problems.Forbidden($"You may not register instances of '{definition.Service}'. An admin grants it with POST /api/v1/registry/grants.");
        }
        var routes = request.Routes ?? default;
        var ownership = await s.Claims.OwnershipAsync(cancellationToken);
        var outside = RouteDeclaration.Paths(routes)
            .Select(path => (path, verdict: ownership.Check(definition.Service, path)))
            .Where(r => !r.verdict.Allowed)
            .ToList();
        if (outside.Count > 0)
        {
            await s.Audit.AppendAsync(new AuditEvent("registry.register", AuditOutcome.Denied)
            {
                Target = $"service:{definition.Service}",
                Details = new Dictionary<string, string> { ["reason"] = "route claims", ["routes"] = string.Join(" ", outside.Select(o => o.path)) },
            }.From(context), cancellationToken);
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Routes outside the service's claims",
                detail: string.Join(" ", outside.Select(o => o.verdict.Reason + ".")) + " An operator grants more with POST /api/v1/registry/route-claims.",
                extensions: new Dictionary<string, object?>
                {
                    ["service"] = definition.Service,
                    ["claims"] = ownership.ClaimsOf(definition.Service),
                    ["routes"] = outside.Select(o => new { path = o.path, reason = o.verdict.Reason }).ToList(),
                });
        }
        var problems = new List<(string Field, string Message)>();
        var declared = new List<RouteDeclaration>();
        // Every check runs on every route, so one answer lists every problem.
        foreach (var (route, field, _) in RouteDeclaration.ParseEach(routes, problems, strict: true))
        {
            foreach (var validator in s.RouteValidators)
            {
                await validator.ValidateAsync(route, field, problems, cancellationToken);
            }
            declared.Add(route);
        }
        if (problems.Count > 0)
        {
            foreach (var (field, message) in problems)
            {
                errors.Add(field, message);
            }
            return errors.ToProblem();
        }
        // Passthrough hands every caller's Fundament token to the service: an operator's decision, not the service's own.
        if (declared.Any(r => r.ForwardAuthorization == ForwardAuthorization.Passthrough)
            && !await HoldsAsync(context.User, s.Permissions, RegistryPermissions.Passthrough, cancellationToken))
        {
            await s.Audit.AppendAsync(new AuditEvent("registry.register", AuditOutcome.Denied)
            {
                Target = $"service:{definition.Service}",
                Details = new Dictionary<string, string> { ["reason"] = "passthrough" },
            }.From(context), cancellationToken);
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
                detail: $"forwardAuthorization 'passthrough' needs the permission {RegistryPermissions.Passthrough}, which an operator grants through a role; without it the service receives a token minted for it (exchange).",
                extensions: new Dictionary<string, object?> { ["missingPermission"] = RegistryPermissions.Passthrough });
        }
        definition = definition with { RoutesJson = routes.ValueKind == JsonValueKind.Array ? routes.GetRawText() : "[]" };
        var record = await s.Database.InUnitOfWorkAsync(async () =>
        {
            var record = await s.Store.RegisterAsync(definition, context.User.ActorId() ?? "unknown", cancellationToken);
            if (record is null)
            {
                return null;
            }
            await s.Audit.AppendAsync(new AuditEvent("registry.register", AuditOutcome.Success)
            {
                Target = $"instance:{record.Id}",
                Details = new Dictionary<string, string> { ["service"] = record.Service, ["address"] = $"{record.Address}:{record.Port}" },
            }.From(context), cancellationToken);
            foreach (var passthrough in declared.Where(r => r.ForwardAuthorization == ForwardAuthorization.Passthrough))
            {
                await s.Audit.AppendAsync(new AuditEvent("registry.route_passthrough", AuditOutcome.Success)
                {
                    Target = $"instance:{record.Id}",
                    Details = new Dictionary<string, string> { ["service"] = record.Service, ["path"] = passthrough.Path },
                }.From(context), cancellationToken);
            }
            return record;
        }, cancellationToken);
        if (record is null)
        {
            return Problems.Conflict($"Instance id '{definition.Id}' belongs to another service.");
        }
        foreach (var passthrough in declared.Where(r => r.ForwardAuthorization == ForwardAuthorization.Passthrough))
        {
            LogPassthrough(s.Logger, record.Service, passthrough.Path);
        }

        // Only what the caller could read through the config API itself (registry.write alone is not config.read).
        var config = (s.Services.GetService<IConfigResolver>() is { } resolver
            ? await resolver.ResolveForAsync(context.User, definition.Service, definition.Environment, cancellationToken)
            : null) ?? new Dictionary<string, JsonElement>();
        var secrets = s.Services.GetService<ISecretDirectory>() is { } directory
            ? await directory.ReadablePathsAsync(context.User, cancellationToken)
            : [];
        // Whole seconds, a third of the TTL, so any client parses it and three beats fit in one TTL.
        var heartbeat = definition.Ttl is { } ttl ? Durations.Format(TimeSpan.FromSeconds(Math.Max(1, Math.Floor(ttl.TotalSeconds / 3)))) : null;
        return TypedResults.Created($"/api/v1/registry/instances/{record.Id}", new RegisterResponse(record.Id, heartbeat, config, secrets));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Service {Service} registered route {Path} with forwardAuthorization=passthrough: callers' bearer tokens reach its upstream")]
    private static partial void LogPassthrough(ILogger logger, string service, string path);

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> HeartbeatAsync(
        string id, HeartbeatRequest? request, RegistryStore store, IRolePermissions permissions, HttpContext context, CancellationToken cancellationToken)
    {
        var status = request?.Status ?? InstanceStatus.Passing;
        if (!InstanceStatus.IsValid(status))
        {
            return Problems.Validation("status", "status must be passing, warning or critical.");
        }
        if (request?.Output is { Length: > 500 })
        {
            return Problems.Validation("output", "output must be at most 500 characters.");
        }
        var instance = await store.GetAsync(id, cancellationToken);
        if (instance is null)
        {
            return Problems.NotFound("The instance");
        }
        if (!await OwnsAsync(context.User, instance, permissions, cancellationToken))
        {
            return Problems.Forbidden("Only the client that registered the instance may heartbeat for it.");
        }
        if (instance.CheckKind != "ttl")
        {
            return Problems.Conflict("This instance has no TTL check; its status comes from its HTTP check.");
        }
        return await store.HeartbeatAsync(id, status, request?.Output, cancellationToken) ? TypedResults.NoContent() : Problems.NotFound("The instance");
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeregisterAsync(
        string id, IDatabase database, RegistryStore store, IRolePermissions permissions, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var instance = await store.GetAsync(id, cancellationToken);
        if (instance is null)
        {
            return Problems.NotFound("The instance");
        }
        if (!await OwnsAsync(context.User, instance, permissions, cancellationToken))
        {
            return Problems.Forbidden("Only the client that registered the instance (or an admin) may deregister it.");
        }
        await database.InUnitOfWorkAsync(async () =>
        {
            await store.DeregisterAsync(id, "deregistered by " + (context.User.ActorId() ?? "unknown"), cancellationToken);
            await audit.AppendAsync(new AuditEvent("registry.deregister", AuditOutcome.Success) { Target = $"instance:{id}" }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<InstanceDetail>, ProblemHttpResult>> GetAsync(string id, RegistryStore store, CancellationToken cancellationToken) =>
        await store.GetAsync(id, cancellationToken) is { } instance ? TypedResults.Ok(instance.ToDetail()) : Problems.NotFound("The instance");

    private static async Task<Ok<IReadOnlyList<StatusChange>>> HistoryAsync(string id, RegistryStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.HistoryAsync(id, cancellationToken));

    private static async Task<Results<Ok<IReadOnlyList<ServiceSummary>>, ValidationProblem>> ServicesAsync(
        long? index, string? wait, int? limit, string? after, RegistryStore store, WatchSlots watches, TimeProvider time, HttpContext context, CancellationToken cancellationToken)
    {
        if (WatchProblem(index, wait, out var waitFor) is { } problem)
        {
            return problem;
        }
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (index is { } known)
        {
            using (await watches.AcquireAsync(QuotaSubject.Of(context.User), cancellationToken))
            {
                await BlockingQuery.WaitAsync(store.GlobalIndexAsync, known, waitFor, store.Changes, time, cancellationToken);
            }
        }
        var current = await store.GlobalIndexAsync(cancellationToken);
        var services = Paging.Page(context, await store.ServicesPageAsync(after, Paging.Take(size), cancellationToken), size, s => s.Service, WatchParameters);
        BlockingQuery.SetIndex(context.Response, current);
        return TypedResults.Ok(services);
    }

    private static async Task<Results<Ok<IReadOnlyList<InstanceResponse>>, ValidationProblem>> InstancesAsync(
        string name, bool? healthy, string? tag, long? index, string? wait, int? limit, string? after, RegistryStore store, WatchSlots watches, TimeProvider time, HttpContext context,
        CancellationToken cancellationToken)
    {
        if (!RegistryNames.IsService(name))
        {
            return Problems.Validation("name", "name must be a service name (a-z, 0-9, '.', '_', '-').");
        }
        if (tag is { Length: > 64 })
        {
            return Problems.Validation("tag", "tag must be at most 64 characters.");
        }
        if (WatchProblem(index, wait, out var waitFor) is { } problem)
        {
            return problem;
        }
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (index is { } known)
        {
            using (await watches.AcquireAsync(QuotaSubject.Of(context.User), cancellationToken))
            {
                await BlockingQuery.WaitAsync(ct => store.ServiceIndexAsync(name, ct), known, waitFor, store.Changes, time, cancellationToken);
            }
        }
        var current = await store.ServiceIndexAsync(name, cancellationToken);
        var rows = await store.InstancesPageAsync(name, healthy == true, tag, after, Paging.Take(size), cancellationToken);
        var instances = Paging.Page(context, rows, size, i => i.Id, WatchParameters).Select(i => i.ToResponse()).ToList();
        BlockingQuery.SetIndex(context.Response, current);
        return TypedResults.Ok<IReadOnlyList<InstanceResponse>>(instances);
    }

    private static async Task<Results<Created<GrantRequest>, ValidationProblem>> GrantAsync(
        GrantRequest request, IDatabase database, RegistryStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("clientId", request.ClientId).MaxLength("clientId", request.ClientId, 100);
        if (request.Service is null || !RegistryNames.IsService(request.Service))
        {
            errors.Add("service", "service must be a service name (a-z, 0-9, '.', '_', '-').");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        await database.InUnitOfWorkAsync(async () =>
        {
            await store.AddGrantAsync(request.ClientId!, request.Service!, cancellationToken);
            await audit.AppendAsync(new AuditEvent("registry.grant", AuditOutcome.Success)
            {
                Target = $"client:{request.ClientId}",
                Details = new Dictionary<string, string> { ["service"] = request.Service! },
            }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.Created("/api/v1/registry/grants", request);
    }

    private static async Task<Results<Ok<IReadOnlyList<GrantRequest>>, ValidationProblem>> GrantsAsync(
        int? limit, string? after, RegistryStore store, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(Paging.Page(context, await store.GrantsAsync(after, Paging.Take(size), cancellationToken), size, RegistryStore.GrantCursor));
    }

    /// <summary>
    /// A watch's parameters, left out of the next page's link: the watch already answered, and the
    /// following pages are read at once rather than waiting for the next change.
    /// </summary>
    private static readonly string[] WatchParameters = ["index", "wait"];

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeGrantAsync(
        string? clientId, string? service, IDatabase database, RegistryStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (clientId is null || service is null)
        {
            return Problems.NotFound("The grant");
        }
        var removed = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await store.RemoveGrantAsync(clientId, service, cancellationToken))
            {
                return false;
            }
            await audit.AppendAsync(new AuditEvent("registry.revoke_grant", AuditOutcome.Success)
            {
                Target = $"client:{clientId}",
                Details = new Dictionary<string, string> { ["service"] = service },
            }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        return removed ? TypedResults.NoContent() : Problems.NotFound("The grant");
    }

    private static ValidationProblem? WatchProblem(long? index, string? wait, out TimeSpan waitFor)
    {
        waitFor = BlockingQuery.ParseWait(wait, out var error) ?? BlockingQuery.DefaultWait;
        if (error is not null)
        {
            return Problems.Validation("wait", error);
        }
        return index is < 0 ? Problems.Validation("index", "index must not be negative.") : null;
    }

    private static async Task<bool> MayRegisterAsync(ClaimsPrincipal user, string service, RegistryStore store, IRolePermissions permissions, CancellationToken cancellationToken)
    {
        if (await IsRegistryAdminAsync(user, permissions, cancellationToken))
        {
            return true;
        }
        if (user.ClientIdOf() is not { } clientId)
        {
            return false;
        }
        var held = await permissions.PermissionsOfAsync(user.RolesOf(), cancellationToken);
        return (held.Contains(RegistryPermissions.RegisterOwn) && string.Equals(user.FindFirst(FundamentClaims.Name)?.Value, service, StringComparison.Ordinal))
            || await store.IsGrantedAsync(clientId, service, cancellationToken);
    }

    private static async Task<bool> OwnsAsync(ClaimsPrincipal user, InstanceRecord instance, IRolePermissions permissions, CancellationToken cancellationToken) =>
        string.Equals(user.ActorId(), instance.RegisteredBy, StringComparison.Ordinal) || await IsRegistryAdminAsync(user, permissions, cancellationToken);

    private static async Task<bool> HoldsAsync(ClaimsPrincipal user, IRolePermissions permissions, string permission, CancellationToken cancellationToken)
    {
        var held = await permissions.PermissionsOfAsync(user.RolesOf(), cancellationToken);
        return held.Contains(Permissions.All) || held.Contains(permission);
    }

    private static async Task<bool> IsRegistryAdminAsync(ClaimsPrincipal user, IRolePermissions permissions, CancellationToken cancellationToken)
    {
        var held = await permissions.PermissionsOfAsync(user.RolesOf(), cancellationToken);
        return held.Contains(Permissions.All) || held.Contains(RegistryPermissions.Write);
    }

    private static InstanceDefinition? Validate(RegisterRequest r, RegistryOptions options, ValidationErrors errors)
    {
        if (r.Service is null || !RegistryNames.IsService(r.Service))
        {
            errors.Add("service", "service is required: 1-63 characters of a-z, 0-9, '.', '_' and '-'.");
        }
        if (r.InstanceId is not null && !RegistryNames.IsInstanceId(r.InstanceId))
        {
            errors.Add("instanceId", "instanceId must be 1-128 characters of letters, digits, '.', '_', ':' and '-'.");
        }
        else if (r.InstanceId is not null && RegistryNames.IsReservedInstanceId(r.InstanceId))
        {
            // A node's own instance id is predictable; taken by a tenant while the node restarts, it would take the API off the gateway.
            errors.Add("instanceId", "instance ids starting with 'fundament-' or 'fundament:' belong to Fundament's own nodes.");
        }
        if (string.IsNullOrWhiteSpace(r.Address) || r.Address.Length > 253 || Uri.CheckHostName(r.Address.Trim('[', ']')) == UriHostNameType.Unknown)
        {
            errors.Add("address", "address is required: a host name or an IP address.");
        }
        if (r.Port is not (>= 1 and <= 65535))
        {
            errors.Add("port", "port is required: 1-65535.");
        }
        var scheme = r.Scheme ?? "http";
        if (scheme is not ("http" or "https"))
        {
            errors.Add("scheme", "scheme must be http or https.");
        }
        errors.MaxLength("version", r.Version, 64);
        var environment = r.Environment ?? "*";
        if (environment != "*" && !RegistryNames.IsService(environment))
        {
            errors.Add("environment", "environment must be a name (a-z, 0-9, '.', '_', '-') or *.");
        }
        var tags = r.Tags ?? [];
        if (tags.Count > 32 || tags.Any(t => string.IsNullOrEmpty(t) || t.Length > 64))
        {
            errors.Add("tags", "at most 32 tags of 1-64 characters.");
        }
        var metadata = r.Metadata ?? new Dictionary<string, string>();
        if (metadata.Count > 32 || metadata.Any(m => m.Key.Length is 0 or > 64 || m.Value is null || m.Value.Length > 512))
        {
            errors.Add("metadata", "at most 32 entries, keys of 1-64 and values of at most 512 characters.");
        }

        var (checkKind, checkPath, interval, timeout, ttl) = ValidateCheck(r.Check, options, errors);
        TimeSpan? deregisterAfter = null;
        if (r.DeregisterAfter is not null)
        {
            deregisterAfter = Duration(r.DeregisterAfter, "deregisterAfter", TimeSpan.FromSeconds(1), TimeSpan.FromDays(30), errors);
        }
        if (errors.Any)
        {
            return null;
        }
        var id = r.InstanceId ?? $"{r.Service}-{Guid.NewGuid().ToString("N")[..12]}";
        return new InstanceDefinition(id, r.Service!, environment, r.Address!.Trim('[', ']'), r.Port!.Value, scheme, r.Version, tags.Distinct().ToList(),
            metadata, "[]", checkKind, checkPath, interval, timeout, ttl, deregisterAfter);
    }

    /// <summary>The health check of a registration: none, an HTTP path polled at an interval, or a TTL the instance renews.</summary>
    private static (string Kind, string? Path, TimeSpan? Interval, TimeSpan? Timeout, TimeSpan? Ttl) ValidateCheck(
        CheckDefinition? check, RegistryOptions options, ValidationErrors errors)
    {
        if (check is null)
        {
            return ("none", null, null, null, null);
        }
        if ((check.Http is null) == (check.Ttl is null))
        {
            errors.Add("check", "a check has either http (with interval and timeout) or ttl.");
            return ("none", null, null, null, null);
        }
        if (check.Http is not { } http)
        {
            return ("ttl", null, null, null, Duration(check.Ttl, "check.ttl", options.MinCheckInterval, TimeSpan.FromHours(1), errors));
        }
        if (!http.StartsWith('/') || http.Length > 256 || http.Contains("//", StringComparison.Ordinal))
        {
            errors.Add("check.http", "check.http must be a path on the instance, such as /health/ready.");
        }
        var interval = Duration(check.Interval ?? "10s", "check.interval", options.MinCheckInterval, TimeSpan.FromHours(1), errors);
        var timeout = Duration(check.Timeout ?? "2s", "check.timeout", TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5), errors);
        if (interval is { } i && timeout is { } t && t > i)
        {
            errors.Add("check.timeout", "check.timeout must not exceed check.interval.");
        }
        return ("http", http, interval, timeout, null);
    }

    private static TimeSpan? Duration(string? text, string field, TimeSpan min, TimeSpan max, ValidationErrors errors)
    {
        if (!Durations.TryParse(text, out var value) || value < min || value > max)
        {
            errors.Add(field, $"{field} must be a duration between {Durations.Format(min)} and {Durations.Format(max)}, such as 10s.");
            return null;
        }
        return value;
    }
}
