using System.Text.Json;
using Fundament.Registry.Routes;

namespace Fundament.Gateway.Policies;

internal static class GatewayPoliciesApi
{
    public static RouteGroupBuilder MapGatewayPoliciesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/gateway/policies").WithTags("Gateway");
        group.MapGet("", ListAsync).RequireAuthorization(GatewayPermissions.Read).WithName("ListGatewayPolicies")
            .WithSummary("Rate-limit and CORS policies routes may name: first the read-only seeds from configuration, then those stored through this API, each part by kind "
                + "and name. A page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapGet("/{kind}/{name}", GetAsync).RequireAuthorization(GatewayPermissions.Read).WithName("GetGatewayPolicy").WithSummary("Get a gateway policy");
        group.MapPut("/rate-limit/{name}", PutRateLimitAsync).RequireAuthorization(GatewayPermissions.Write).WithName("PutRateLimitPolicy")
            .WithSummary("Creates or replaces a rate-limit policy; every gateway applies it within a second.");
        group.MapPut("/cors/{name}", PutCorsAsync).RequireAuthorization(GatewayPermissions.Write).WithName("PutCorsPolicy")
            .WithSummary("Creates or replaces a CORS policy; every gateway applies it within a second.");
        group.MapDelete("/{kind}/{name}", DeleteAsync).RequireAuthorization(GatewayPermissions.Write).WithName("DeleteGatewayPolicy")
            .WithSummary("Deletes a stored policy; 409 for a configuration seed or while registered routes name it.");
        return group;
    }

    /// <remarks>
    /// The seeds (a few, from configuration) come first, ordered here; then the stored policies,
    /// which the database orders and pages, without those a seed of the same kind and name shadows
    /// or whose definition no longer validates (the gateway ignores both). A cursor starts with its
    /// part's source.
    /// </remarks>
    private static async Task<Results<Ok<IReadOnlyList<GatewayPolicyResponse>>, ValidationProblem>> ListAsync(
        int? limit, string? after, GatewayPolicyStore store, GatewayPolicyCatalog catalog, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var take = Paging.Take(size);
        var source = after is null ? GatewayPolicyCatalog.ConfigSource : Paging.Split(after, 2)[0];
        var snapshot = catalog.Current;
        var seeds = snapshot.RateLimits.Values.Where(p => p.Source == GatewayPolicyCatalog.ConfigSource).Select(Response)
            .Concat(snapshot.Cors.Values.Where(p => p.Source == GatewayPolicyCatalog.ConfigSource).Select(Response))
            .ToList();
        var listed = new List<(string Cursor, GatewayPolicyResponse Policy)>();
        if (source == GatewayPolicyCatalog.ConfigSource)
        {
            listed.AddRange(seeds
                .Select(p => (Cursor: Paging.Compose(GatewayPolicyCatalog.ConfigSource, p.Kind, p.Name), Policy: p))
                .Where(p => after is null || string.CompareOrdinal(p.Cursor, after) > 0)
                .OrderBy(p => p.Cursor, StringComparer.Ordinal)
                .Take(take));
        }
        if (listed.Count < take && source is GatewayPolicyCatalog.ConfigSource or GatewayPolicyCatalog.ApiSource)
        {
            var shadowed = seeds.Select(p => (p.Kind, p.Name)).ToHashSet();
            var stored = await Paging.FillAsync(source == GatewayPolicyCatalog.ApiSource ? Paging.Split(after!, 2)[1] : null, take - listed.Count,
                (cursor, count) => store.PageAsync(cursor, count, cancellationToken), row => Paging.Compose(row.Kind, row.Name),
                row => !shadowed.Contains((row.Kind, row.Name)) && Stored(row) is not null);
            listed.AddRange(stored.Select(row => (Paging.Compose(GatewayPolicyCatalog.ApiSource, row.Kind, row.Name), Stored(row)!)));
        }
        return TypedResults.Ok<IReadOnlyList<GatewayPolicyResponse>>(Paging.Page(context, listed, size, p => p.Cursor).Select(p => p.Policy).ToList());
    }

    private static GatewayPolicyResponse? Stored(StoredPolicyRow row) => row.Kind switch
    {
        GatewayPolicyKinds.RateLimit => GatewayPolicyCatalog.RateLimitEntry(row) is { } limit ? Response(limit) : null,
        GatewayPolicyKinds.Cors => GatewayPolicyCatalog.CorsEntry(row) is { } cors ? Response(cors) : null,
        _ => null,
    };

    private static async Task<Results<Ok<GatewayPolicyResponse>, ProblemHttpResult>> GetAsync(string kind, string name, GatewayPolicyCatalog catalog, CancellationToken cancellationToken)
    {
        await catalog.ReloadAsync(cancellationToken);
        return Find(catalog.Current, kind, name) is { } found ? TypedResults.Ok(found) : Problems.NotFound($"The {kind} policy '{name}'");
    }

    private static Task<Results<Created<GatewayPolicyResponse>, Ok<GatewayPolicyResponse>, ValidationProblem, ProblemHttpResult>> PutRateLimitAsync(
        string name, RateLimitPolicyBody body, IDatabase database, GatewayPolicyStore store, GatewayPolicyCatalog catalog, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = NameErrors(name);
        var options = GatewayPolicyDefinitions.ToOptions(body, errors);
        return PutAsync(GatewayPolicyKinds.RateLimit, name, options is null ? null : GatewayPolicyDefinitions.ToBody(options), errors, database, store, catalog, audit, context, cancellationToken);
    }

    private static Task<Results<Created<GatewayPolicyResponse>, Ok<GatewayPolicyResponse>, ValidationProblem, ProblemHttpResult>> PutCorsAsync(
        string name, CorsPolicyBody body, IDatabase database, GatewayPolicyStore store, GatewayPolicyCatalog catalog, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = NameErrors(name);
        var options = GatewayPolicyDefinitions.ToOptions(body, errors);
        return PutAsync(GatewayPolicyKinds.Cors, name, options is null ? null : GatewayPolicyDefinitions.ToBody(options), errors, database, store, catalog, audit, context, cancellationToken);
    }

    private static async Task<Results<Created<GatewayPolicyResponse>, Ok<GatewayPolicyResponse>, ValidationProblem, ProblemHttpResult>> PutAsync(
        string kind, string name, object? canonical, ValidationErrors errors, IDatabase database, GatewayPolicyStore store, GatewayPolicyCatalog catalog, IAuditLog audit,
        HttpContext context, CancellationToken cancellationToken)
    {
        if (errors.Any || canonical is null)
        {
            return errors.ToProblem();
        }
        if (Find(catalog.Current, kind, name) is { Source: GatewayPolicyCatalog.ConfigSource })
        {
            return Problems.Conflict($"The {kind} policy '{name}' is set in configuration (Fundament:Gateway); change it there.");
        }
        var created = await database.AuditedAsync(audit,
            () => store.PutAsync(kind, name, JsonSerializer.Serialize(canonical, JsonSerializerOptions.Web), context.User.ActorId() ?? "unknown", cancellationToken),
            created => new AuditEvent(created ? "gateway.policy.create" : "gateway.policy.update", AuditOutcome.Success) { Target = $"gateway_policy:{kind}/{name}" }.From(context),
            cancellationToken);
        await catalog.ReloadAsync(cancellationToken);
        var response = Find(catalog.Current, kind, name)!;
        return created ? TypedResults.Created($"/api/v1/gateway/policies/{kind}/{name}", response) : TypedResults.Ok(response);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string kind, string name, IDatabase database, GatewayPolicyStore store, GatewayPolicyCatalog catalog, IRoutingTableSource routing, IConfiguration configuration,
        IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        await catalog.ReloadAsync(cancellationToken);
        var existing = Find(catalog.Current, kind, name);
        if (existing is null)
        {
            return Problems.NotFound($"The {kind} policy '{name}'");
        }
        if (existing.Source == GatewayPolicyCatalog.ConfigSource)
        {
            return Problems.Conflict($"The {kind} policy '{name}' is set in configuration (Fundament:Gateway); remove it there.");
        }
        var table = await routing.GetAsync(null, TimeSpan.Zero, cancellationToken);
        var users = table.Instances
            .Where(i => Routes(i.RoutesJson).Any(r => (kind == GatewayPolicyKinds.RateLimit ? r.RateLimit : r.Cors) == name))
            .Select(i => i.Service)
            .Concat(configuration.GetSection(GatewayOptions.SectionName + ":Static:Routes").GetChildren()
                .Where(r => r[kind == GatewayPolicyKinds.RateLimit ? "RateLimiterPolicy" : "CorsPolicy"] == name)
                .Select(r => StaticRouteClaims.HolderPrefix + r.Key))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        if (users.Count > 0)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict",
                detail: $"Routes of {string.Join(", ", users.Select(u => $"'{u}'"))} name the {kind} policy '{name}'; they must be registered without it first.",
                extensions: new Dictionary<string, object?> { ["services"] = users });
        }
        await database.AuditedAsync(audit, () => store.DeleteAsync(kind, name, cancellationToken),
            deleted => deleted ? new AuditEvent("gateway.policy.delete", AuditOutcome.Success) { Target = $"gateway_policy:{kind}/{name}" }.From(context) : null, cancellationToken);
        await catalog.ReloadAsync(cancellationToken);
        return TypedResults.NoContent();
    }

    private static IReadOnlyList<RouteDeclaration> Routes(string json)
    {
        using var document = JsonDocument.Parse(json);
        return RouteDeclaration.ParseAll(document.RootElement, new List<(string, string)>(), strict: false);
    }

    private static ValidationErrors NameErrors(string name)
    {
        var errors = new ValidationErrors();
        if (!GatewayPolicyDefinitions.IsName(name))
        {
            errors.Add("name", "name must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit (not 'default' or 'disable').");
        }
        return errors;
    }

    private static GatewayPolicyResponse? Find(PolicySnapshot snapshot, string kind, string name) => kind switch
    {
        GatewayPolicyKinds.RateLimit when snapshot.RateLimits.TryGetValue(name, out var limit) => Response(limit),
        GatewayPolicyKinds.Cors when snapshot.Cors.TryGetValue(name, out var cors) => Response(cors),
        _ => null,
    };

    private static GatewayPolicyResponse Response(PolicyEntry<RateLimitPolicyOptions> p) =>
        new(GatewayPolicyKinds.RateLimit, p.Name, p.Source, p.Version, p.UpdatedBy, p.UpdatedAt, GatewayPolicyDefinitions.ToBody(p.Options), null);

    private static GatewayPolicyResponse Response(PolicyEntry<CorsPolicyOptions> p) =>
        new(GatewayPolicyKinds.Cors, p.Name, p.Source, p.Version, p.UpdatedBy, p.UpdatedAt, null, GatewayPolicyDefinitions.ToBody(p.Options));
}
