using System.Text.Json;
using Fundament.Registry.Instances;

namespace Fundament.Registry.Routes;

/// <summary>Body of <c>POST /api/v1/registry/route-claims</c>.</summary>
/// <param name="Service">Required: the service that may then serve paths under <paramref name="PathPrefix"/>.</param>
/// <param name="PathPrefix">Required: a literal path such as <c>/shop</c> or <c>/orders/invoices</c>; stored normalised (lower case, no duplicate slashes).</param>
public sealed record RouteClaimRequest(string? Service, string? PathPrefix);

/// <summary>A prefix a service holds.</summary>
/// <param name="Source"><c>claim</c> (granted through this API), <c>default</c> (<c>/&lt;service&gt;</c>, held by every service the registry knows), <c>reserved</c> (Fundament's own paths) or <c>configuration</c> (a static gateway route, held by <c>static:&lt;route&gt;</c>).</param>
public sealed record RouteClaimResponse(string Service, string PathPrefix, string Source, string? CreatedBy, DateTimeOffset? CreatedAt);

internal static class RouteClaimsApi
{
    public static void MapRouteClaimsApi(this RouteGroupBuilder registry)
    {
        registry.MapPost("/route-claims", CreateAsync).RequireAuthorization(RegistryPermissions.Write).WithName("CreateRouteClaim")
            .WithSummary("Lets a service serve gateway paths under a prefix; 409 naming the holder when it overlaps another service's claim or Fundament's reserved paths.");
        registry.MapGet("/route-claims", ListAsync).RequireAuthorization(RegistryPermissions.Read).WithName("ListRouteClaims")
            .WithSummary("Every prefix held, a page at a time: first Fundament's reserved paths and the gateway's static routes, then explicit claims and the default /<service> "
                + "of each registered service, each part by path. limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        registry.MapDelete("/route-claims", DeleteAsync).RequireAuthorization(RegistryPermissions.Write).WithName("DeleteRouteClaim")
            .WithSummary("Revokes a claim; 409 while registered routes still need it, unless force=true (the gateway then stops serving them).");
    }

    private static async Task<Results<Created<RouteClaimResponse>, Ok<RouteClaimResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        RouteClaimRequest request, IDatabase database, RouteClaimStore claims, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (request.Service is null || !RegistryNames.IsService(request.Service))
        {
            errors.Add("service", "service must be a service name (a-z, 0-9, '.', '_', '-').");
        }
        var prefix = ParsePrefix(request.PathPrefix, errors);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (request.Service == RoutePaths.FundamentService)
        {
            return Problems.Forbidden($"Service '{RoutePaths.FundamentService}' holds Fundament's reserved paths ({string.Join(", ", RoutePaths.Reserved)}) and takes no claims.");
        }
        var target = $"route_claim:{RoutePaths.Format(prefix!)}";
        var (outcome, claim, holder, heldPrefix) = await database.InUnitOfWorkAsync(async () =>
        {
            var result = await claims.AddAsync(request.Service!, prefix!, context.User.ActorId() ?? "unknown", cancellationToken);
            if (result.Outcome != ClaimOutcome.AlreadyHeld)
            {
                await audit.AppendAsync(new AuditEvent("registry.route_claim.create", result.Outcome == ClaimOutcome.Created ? AuditOutcome.Success : AuditOutcome.Denied)
                {
                    Target = target,
                    Details = result.Outcome == ClaimOutcome.Created
                        ? new Dictionary<string, string> { ["service"] = request.Service! }
                        : new Dictionary<string, string> { ["service"] = request.Service!, ["holder"] = result.Holder!, ["held"] = result.HeldPrefix! },
                }.From(context), cancellationToken);
            }
            return result;
        }, cancellationToken);
        if (outcome == ClaimOutcome.Conflict)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict",
                detail: $"{RoutePaths.Format(prefix!)} overlaps {heldPrefix}, held by service '{holder}'. Claims of two services may not overlap.",
                extensions: new Dictionary<string, object?> { ["holder"] = holder, ["heldPrefix"] = heldPrefix });
        }
        var response = new RouteClaimResponse(claim!.Service, claim.PathPrefix, "claim", claim.CreatedBy, claim.CreatedAt);
        if (outcome == ClaimOutcome.AlreadyHeld)
        {
            return TypedResults.Ok(response);
        }
        return TypedResults.Created("/api/v1/registry/route-claims", response);
    }

    /// <summary>Cursor segment of the fixed claims: Fundament's reserved paths and the gateway's static routes, from code and configuration.</summary>
    private const string FixedSegment = "0";

    /// <summary>Cursor segment of the stored claims and defaults, which the database pages.</summary>
    private const string StoredSegment = "1";

    /// <remarks>
    /// The fixed claims (a handful, from code and configuration) come first, ordered here; then the
    /// stored ones, which the database orders and pages. A cursor starts with its segment.
    /// </remarks>
    private static async Task<Results<Ok<IReadOnlyList<RouteClaimResponse>>, ValidationProblem>> ListAsync(
        string? service, int? limit, string? after, RouteClaimStore claims, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var take = Paging.Take(size);
        var segment = after is null ? FixedSegment : Paging.Split(after, 2)[0];
        var listed = new List<(string Cursor, RouteClaimResponse Claim)>();
        if (string.CompareOrdinal(segment, FixedSegment) <= 0)
        {
            listed.AddRange(RoutePaths.Reserved.Select(r => new RouteClaimResponse(RoutePaths.FundamentService, r, "reserved", null, null))
                .Concat(claims.Configured().Select(c => new RouteClaimResponse(c.Service, c.PathPrefix, "configuration", c.CreatedBy, c.CreatedAt)))
                .Where(c => service is null || c.Service == service)
                .Select(c => (Cursor: Paging.Compose(FixedSegment, c.PathPrefix, c.Source, c.Service), Claim: c))
                .Where(c => after is null || string.CompareOrdinal(c.Cursor, after) > 0)
                .OrderBy(c => c.Cursor, StringComparer.Ordinal)
                .Take(take));
        }
        if (listed.Count < take && string.CompareOrdinal(segment, StoredSegment) <= 0)
        {
            var storedAfter = segment == StoredSegment ? Paging.Split(after!, 2)[1] : null;
            // A default for a name that holds none (a version segment, a reserved path) is not listed.
            var stored = await Paging.FillAsync(storedAfter, take - listed.Count,
                (cursor, count) => claims.ListStoredAsync(service, cursor, count, cancellationToken), RouteClaimStore.StoredCursor,
                row => row.Source != "default" || RoutePaths.DefaultClaim(row.Service) is not null);
            listed.AddRange(stored.Select(row => (Paging.Compose(StoredSegment, RouteClaimStore.StoredCursor(row)), new RouteClaimResponse(
                row.Service, row.Path, row.Source, row.CreatedBy, row.CreatedAt is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null))));
        }
        return TypedResults.Ok<IReadOnlyList<RouteClaimResponse>>(Paging.Page(context, listed, size, c => c.Cursor).Select(c => c.Claim).ToList());
    }

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> DeleteAsync(
        string? pathPrefix, bool? force, IDatabase database, RouteClaimStore claims, RegistryStore registry, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var prefix = ParsePrefix(pathPrefix, errors);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var path = RoutePaths.Format(prefix!);
        var ownership = await claims.OwnershipAsync(cancellationToken);
        if (ownership.Claims.FirstOrDefault(c => c.PathPrefix == path && c.Service.Contains(':', StringComparison.Ordinal)) is { } configured)
        {
            return Problems.Conflict($"{path} is held by {configured.Service} through configuration; change it there.");
        }
        if (ownership.Claims.FirstOrDefault(c => c.PathPrefix == path) is not { } claim)
        {
            return Problems.NotFound("The route claim");
        }
        if (force != true)
        {
            var without = new RouteOwnership(ownership.Claims.Where(c => c != claim));
            var needing = (await registry.InstancesAsync(claim.Service, cancellationToken))
                .SelectMany(i => RouteDeclaration.Paths(JsonDocument.Parse(i.Routes).RootElement.Clone()).Select(p => (Instance: i.Id, Path: p)))
                .Where(r => ownership.Check(claim.Service, r.Path).Allowed && !without.Check(claim.Service, r.Path).Allowed)
                .ToList();
            if (needing.Count > 0)
            {
                return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict",
                    detail: $"Routes of '{claim.Service}' still need {path}: {string.Join(", ", needing.Take(10).Select(n => $"{n.Path} ({n.Instance})"))}. Deregister them first, or pass force=true and the gateway stops serving them.",
                    extensions: new Dictionary<string, object?> { ["routes"] = needing.Select(n => new { instanceId = n.Instance, path = n.Path }).ToList() });
            }
        }
        var removed = await database.InUnitOfWorkAsync(async () =>
        {
            if (await claims.RemoveAsync(prefix!, cancellationToken) is null)
            {
                return false;
            }
            await audit.AppendAsync(new AuditEvent("registry.route_claim.delete", AuditOutcome.Success)
            {
                Target = $"route_claim:{path}",
                Details = new Dictionary<string, string> { ["service"] = claim.Service, ["force"] = (force == true).ToString() },
            }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        return removed ? TypedResults.NoContent() : Problems.NotFound("The route claim");
    }

    /// <summary>A claimable prefix in normal form, or null with the reason in <paramref name="errors"/>.</summary>
    private static string[]? ParsePrefix(string? text, ValidationErrors errors)
    {
        if (text is null || !text.StartsWith('/') || text.Length > 256 || text.IndexOfAny(['{', '}', '*', '?', '#']) >= 0)
        {
            errors.Add("pathPrefix", "pathPrefix must be a literal path starting with / (no parameters or wildcards), at most 256 characters.");
            return null;
        }
        var segments = RoutePaths.Normalize(text);
        if (segments.Length is 0 or > 16 || segments.Any(s => s.IndexOfAny(['{', '}', '*', '?', '#', ' ']) >= 0 || s.Any(char.IsControl)))
        {
            errors.Add("pathPrefix", "pathPrefix must name 1 to 16 path segments; the root cannot be claimed.");
            return null;
        }
        if (RoutePaths.IsVersionSegment(segments[0]))
        {
            errors.Add("pathPrefix", $"/{segments[0]} is the gateway's API-version prefix and cannot be claimed.");
            return null;
        }
        return segments;
    }
}
