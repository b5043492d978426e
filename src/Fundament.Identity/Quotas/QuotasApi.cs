using Fundament.Core.Quotas;
using Fundament.Identity.Clients;
using Fundament.Identity.Roles;
using Fundament.Identity.Users;

namespace Fundament.Identity.Quotas;

/// <summary>
/// <c>/api/v1/me/quotas</c> for everyone, and the administrators' side: defaults, overrides per
/// role and per user or client. Setting an override is held to the escalation rule: only on a
/// role or principal whose permissions the caller holds itself.
/// </summary>
internal static class QuotasApi
{
    public const int MaxPage = 500;

    /// <summary>The largest limit (2^53, what every JSON reader holds exactly); beyond it, say unlimited.</summary>
    public const long MaxLimit = 1L << 53;

    public static IEndpointRouteBuilder MapQuotasApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/v1/me/quotas", MineAsync).RequireAuthorization(Policies.Authenticated).WithTags("Me").WithName("GetMyQuotas")
            .WithSummary("The caller's quotas: limit (null = unlimited), what is used, and where the limit comes from (override, role:<name> or default).");
        var group = endpoints.MapGroup("/api/v1/quotas").WithTags("Quotas");
        group.MapGet("", OverviewAsync).RequireAuthorization(IdentityPermissions.QuotasRead).WithName("ListQuotas")
            .WithSummary("The configured defaults and the overrides, a page at a time (after = the last override's scope/subject/quota).");
        group.MapGet("/users/{id}", UserStatesAsync).RequireAuthorization(IdentityPermissions.QuotasRead).WithName("GetUserQuotas")
            .WithSummary("A user's effective quotas and usage.");
        group.MapPut("/roles/{role}/{quota}", SetRoleAsync).RequireAuthorization(IdentityPermissions.QuotasWrite).WithName("SetRoleQuota")
            .WithSummary("Sets a role's limit ({\"limit\": n} or {\"unlimited\": true}). Needs every permission the role grants.");
        group.MapDelete("/roles/{role}/{quota}", RemoveRoleAsync).RequireAuthorization(IdentityPermissions.QuotasWrite).WithName("RemoveRoleQuota")
            .WithSummary("Removes a role's override: the default applies again.");
        group.MapPut("/users/{id}/{quota}", SetUserAsync).RequireAuthorization(IdentityPermissions.QuotasWrite).WithName("SetUserQuota")
            .WithSummary("Sets one user's own limit, which wins over its roles. Needs every permission the user holds.");
        group.MapDelete("/users/{id}/{quota}", RemoveUserAsync).RequireAuthorization(IdentityPermissions.QuotasWrite).WithName("RemoveUserQuota").WithSummary("Remove a user's quota override");
        group.MapPut("/clients/{id}/{quota}", SetClientAsync).RequireAuthorization(IdentityPermissions.QuotasWrite).WithName("SetClientQuota")
            .WithSummary("Sets one service client's own limit. Needs every permission the client holds.");
        group.MapDelete("/clients/{id}/{quota}", RemoveClientAsync).RequireAuthorization(IdentityPermissions.QuotasWrite).WithName("RemoveClientQuota").WithSummary("Remove a client's quota override");
        return endpoints;
    }

    private static async Task<Ok<IReadOnlyList<QuotaState>>> MineAsync(HttpContext context, IQuotas quotas, CancellationToken cancellationToken) =>
        TypedResults.Ok(await quotas.StatesAsync(QuotaSubject.Of(context.User), cancellationToken));

    private static async Task<Results<Ok<QuotaOverview>, ValidationProblem>> OverviewAsync(
        string? scope, string? after, int? limit, QuotaStore store, IOptionsMonitor<QuotaOptions> options, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().MaxLength("after", after, 400);
        if (scope is not (null or QuotaStore.RoleScope or QuotaStore.PrincipalScope))
        {
            errors.Add("scope", "scope must be role or principal.");
        }
        if (limit is < 1 or > MaxPage)
        {
            errors.Add("limit", $"limit must be between 1 and {MaxPage}.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var take = limit ?? 100;
        var rows = await store.ListAsync(scope, after, take + 1, cancellationToken);
        var page = rows.Take(take).Select(r => r.ToResponse()).ToList();
        var defaults = Quota.All.ToDictionary(q => q, q => options.CurrentValue.Default(q), StringComparer.Ordinal);
        var next = rows.Count > take ? $"{page[^1].Scope}/{page[^1].Subject}/{page[^1].Quota}" : null;
        return TypedResults.Ok(new QuotaOverview(defaults, page, next));
    }

    private static async Task<Results<Ok<IReadOnlyList<QuotaState>>, ProblemHttpResult>> UserStatesAsync(
        string id, UserStore users, IQuotas quotas, CancellationToken cancellationToken)
    {
        if (await users.GetAsync(id, cancellationToken) is not { } user)
        {
            return Problems.NotFound("The user");
        }
        return TypedResults.Ok(await quotas.StatesAsync(new QuotaSubject("user:" + user.Id, user.Roles), cancellationToken));
    }

    private static async Task<Results<Ok<QuotaOverrideResponse>, ValidationProblem, ProblemHttpResult>> SetRoleAsync(
        string role, string quota, QuotaOverrideRequest request, RoleStore roles, RoleGuard guard, Change change, HttpContext context, CancellationToken cancellationToken)
    {
        if (Validate(quota, request) is { } invalid)
        {
            return invalid;
        }
        if (await roles.GetAsync(role, cancellationToken) is not { } existing)
        {
            return Problems.NotFound("The role");
        }
        var check = await guard.CheckPermissionsAsync(context.User, existing.Permissions.ToHashSet(StringComparer.Ordinal), cancellationToken);
        if (!check.Allowed)
        {
            return check.Forbidden();
        }
        return TypedResults.Ok(await change.SetAsync(QuotaStore.RoleScope, role, quota, request, context, cancellationToken));
    }

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> RemoveRoleAsync(
        string role, string quota, RoleStore roles, RoleGuard guard, Change change, HttpContext context, CancellationToken cancellationToken)
    {
        if (!Quota.IsKnown(quota))
        {
            return UnknownQuota();
        }
        if (await roles.GetAsync(role, cancellationToken) is not { } existing)
        {
            return Problems.NotFound("The role");
        }
        var check = await guard.CheckPermissionsAsync(context.User, existing.Permissions.ToHashSet(StringComparer.Ordinal), cancellationToken);
        if (!check.Allowed)
        {
            return check.Forbidden();
        }
        return await change.RemoveAsync(QuotaStore.RoleScope, role, quota, context, cancellationToken) ? TypedResults.NoContent() : Problems.NotFound("The override");
    }

    /// <summary>A user or client whose quotas are overridden: its principal, its roles (for the escalation check), how it is named.</summary>
    private sealed record Principal(string Id, IReadOnlyList<string> Roles, string What);

    private static async Task<Principal?> UserAsync(string id, UserStore users, CancellationToken cancellationToken) =>
        await users.GetAsync(id, cancellationToken) is { } user ? new Principal("user:" + user.Id, user.Roles, $"the quotas of user '{user.Username}'") : null;

    private static async Task<Principal?> ClientAsync(string id, ClientStore clients, CancellationToken cancellationToken) =>
        await clients.GetAsync(id, cancellationToken) is { } client ? new Principal("client:" + client.ClientId, client.Roles, $"the quotas of client '{client.ClientId}'") : null;

    private static async Task<Results<Ok<QuotaOverrideResponse>, ValidationProblem, ProblemHttpResult>> SetUserAsync(
        string id, string quota, QuotaOverrideRequest request, UserStore users, RoleGuard guard, Change change, HttpContext context, CancellationToken cancellationToken) =>
        Validate(quota, request) is { } invalid ? invalid
            : await SetPrincipalAsync(await UserAsync(id, users, cancellationToken), "The user", quota, request, guard, change, context, cancellationToken);

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> RemoveUserAsync(
        string id, string quota, UserStore users, RoleGuard guard, Change change, HttpContext context, CancellationToken cancellationToken) =>
        !Quota.IsKnown(quota) ? UnknownQuota()
            : await RemovePrincipalAsync(await UserAsync(id, users, cancellationToken), "The user", quota, guard, change, context, cancellationToken);

    private static async Task<Results<Ok<QuotaOverrideResponse>, ValidationProblem, ProblemHttpResult>> SetClientAsync(
        string id, string quota, QuotaOverrideRequest request, ClientStore clients, RoleGuard guard, Change change, HttpContext context, CancellationToken cancellationToken) =>
        Validate(quota, request) is { } invalid ? invalid
            : await SetPrincipalAsync(await ClientAsync(id, clients, cancellationToken), "The client", quota, request, guard, change, context, cancellationToken);

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> RemoveClientAsync(
        string id, string quota, ClientStore clients, RoleGuard guard, Change change, HttpContext context, CancellationToken cancellationToken) =>
        !Quota.IsKnown(quota) ? UnknownQuota()
            : await RemovePrincipalAsync(await ClientAsync(id, clients, cancellationToken), "The client", quota, guard, change, context, cancellationToken);

    private static async Task<Results<Ok<QuotaOverrideResponse>, ValidationProblem, ProblemHttpResult>> SetPrincipalAsync(
        Principal? principal, string kind, string quota, QuotaOverrideRequest request, RoleGuard guard, Change change, HttpContext context, CancellationToken cancellationToken)
    {
        if (principal is null)
        {
            return Problems.NotFound(kind);
        }
        var check = await guard.CheckSubjectAsync(context.User, principal.Id, principal.Roles, principal.What, cancellationToken);
        if (!check.Allowed)
        {
            return check.Forbidden();
        }
        return TypedResults.Ok(await change.SetAsync(QuotaStore.PrincipalScope, principal.Id, quota, request, context, cancellationToken));
    }

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> RemovePrincipalAsync(
        Principal? principal, string kind, string quota, RoleGuard guard, Change change, HttpContext context, CancellationToken cancellationToken)
    {
        if (principal is null)
        {
            return Problems.NotFound(kind);
        }
        var check = await guard.CheckSubjectAsync(context.User, principal.Id, principal.Roles, principal.What, cancellationToken);
        if (!check.Allowed)
        {
            return check.Forbidden();
        }
        return await change.RemoveAsync(QuotaStore.PrincipalScope, principal.Id, quota, context, cancellationToken) ? TypedResults.NoContent() : Problems.NotFound("The override");
    }

    private static ValidationProblem UnknownQuota() => Problems.Validation("quota", $"quota must be one of {string.Join(", ", Quota.All)}.");

    private static ValidationProblem? Validate(string quota, QuotaOverrideRequest request)
    {
        var errors = new ValidationErrors();
        if (!Quota.IsKnown(quota))
        {
            errors.Add("quota", $"quota must be one of {string.Join(", ", Quota.All)}.");
        }
        if (request.Unlimited == (request.Limit is not null))
        {
            errors.Add("limit", "Send either limit (a number, 0 or more) or unlimited: true.");
        }
        if (request.Limit is < 0 or > MaxLimit)
        {
            errors.Add("limit", $"limit must be between 0 and {MaxLimit} (or unlimited: true).");
        }
        return errors.Any ? errors.ToProblem() : null;
    }

    /// <summary>An override's write and its audit entry, in one unit of work.</summary>
    internal sealed class Change(IDatabase database, QuotaStore store, IAuditLog audit)
    {
        public Task<QuotaOverrideResponse> SetAsync(string scope, string subject, string quota, QuotaOverrideRequest request, HttpContext context, CancellationToken cancellationToken) =>
            database.InUnitOfWorkAsync(async () =>
            {
                var actor = context.User.ActorId() ?? "unknown";
                await store.SetAsync(scope, subject, quota, request.Unlimited ? null : request.Limit, actor, cancellationToken);
                await audit.AppendAsync(new AuditEvent("quota.set", AuditOutcome.Success)
                {
                    Target = $"{scope}:{subject}",
                    Details = new Dictionary<string, string> { ["quota"] = quota, ["limit"] = request.Unlimited ? "unlimited" : request.Limit!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                }.From(context), cancellationToken);
                return (await store.ForAsync(scope == QuotaStore.PrincipalScope ? subject : "", scope == QuotaStore.RoleScope ? [subject] : [], quota, cancellationToken))
                    .Single(o => o.Scope == scope && o.Subject == subject).ToResponse();
            }, cancellationToken);

        public Task<bool> RemoveAsync(string scope, string subject, string quota, HttpContext context, CancellationToken cancellationToken) =>
            database.AuditedAsync(audit,
                () => store.RemoveAsync(scope, subject, quota, cancellationToken),
                removed => removed
                    ? new AuditEvent("quota.remove", AuditOutcome.Success) { Target = $"{scope}:{subject}", Details = new Dictionary<string, string> { ["quota"] = quota } }.From(context)
                    : null,
                cancellationToken);
    }
}

/// <summary><c>limit</c> (0 or more) or <c>unlimited: true</c>.</summary>
public sealed record QuotaOverrideRequest(long? Limit, bool Unlimited = false);

/// <summary>The defaults (null = unlimited) and a page of overrides; <c>next</c> is the cursor of the following page.</summary>
public sealed record QuotaOverview(IReadOnlyDictionary<string, long?> Defaults, IReadOnlyList<QuotaOverrideResponse> Overrides, string? Next);
