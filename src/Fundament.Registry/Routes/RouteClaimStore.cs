using Dapper;
using Fundament.Registry.Instances;

namespace Fundament.Registry.Routes;

/// <summary>The outcome of claiming a prefix.</summary>
public enum ClaimOutcome
{
    Created,
    AlreadyHeld,
    Conflict,
}

/// <summary>
/// Explicit route claims (table <c>registry_route_claims</c>). Every change advances the registry's
/// change index in its transaction, so gateways rebuild their routes within a second; and because
/// that update locks the index row, two overlapping claims cannot both pass the overlap check on
/// PostgreSQL (SQLite has one writer anyway).
/// </summary>
internal sealed class RouteClaimStore(IDatabase database, RegistryStore registry, TimeProvider time, IEnumerable<IRouteClaimSource> sources)
{
    /// <summary>Every claim in force: stored ones and those other modules hold by configuration.</summary>
    public async Task<RouteOwnership> OwnershipAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return new RouteOwnership([.. await LoadAsync(connection, null, cancellationToken), .. Configured()]);
    }

    /// <summary>Claims held by configuration (the gateway's static routes).</summary>
    public IEnumerable<RouteClaim> Configured() => sources.SelectMany(s => s.Claims());

    /// <summary>
    /// Services the registry has ever seen (registered, or given a claim): their default claim
    /// <c>/&lt;name&gt;</c> stands even while they are scaled to zero, so nobody claims it meanwhile.
    /// </summary>
    public async Task<IReadOnlySet<string>> ExistingServicesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition(KnownServices, cancellationToken: cancellationToken))).ToHashSet(StringComparer.Ordinal);
    }

    private const string KnownServices = "SELECT service FROM registry_service_index UNION SELECT service FROM registry_instances";

    /// <summary>
    /// One page of the stored part of the route-claims list, by (path, source, service): explicit
    /// claims (source <c>claim</c>) and the default <c>/&lt;service&gt;</c> of every service the
    /// registry knows (source <c>default</c>; the caller drops names that hold none, see
    /// <see cref="RoutePaths.DefaultClaim"/>). After <paramref name="after"/>, a cursor of
    /// <see cref="StoredCursor"/>; at most <paramref name="take"/> rows.
    /// </summary>
    public async Task<IReadOnlyList<StoredClaimRow>> ListStoredAsync(string? service, string? after, int take, CancellationToken cancellationToken)
    {
        var cursor = after is null ? null : Paging.Split(after, 3);
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<StoredClaimRow>(new CommandDefinition($"""
            SELECT path AS Path, source AS Source, service AS Service, created_by AS CreatedBy, created_at AS CreatedAt FROM (
                SELECT path_prefix AS path, 'claim' AS source, service, created_by, created_at FROM registry_route_claims
                UNION ALL
                SELECT '/' || k.service, 'default', k.service, NULL, NULL FROM ({KnownServices}) k
            ) c
            WHERE (@service IS NULL OR service = @service)
              AND (@afterPath IS NULL OR (path, source, service) > (@afterPath, @afterSource, @afterService))
            ORDER BY path, source, service LIMIT @take
            """, new { service, afterPath = cursor?[0], afterSource = cursor?[1], afterService = cursor?[2], take }, cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>The paging cursor of a stored row: path and source (never a space in either), then the service.</summary>
    public static string StoredCursor(StoredClaimRow row) => Paging.Compose(row.Path, row.Source, row.Service);

    public async Task<(ClaimOutcome Outcome, RouteClaim? Claim, string? Holder, string? HeldPrefix)> AddAsync(string service, string[] prefix, string createdBy, CancellationToken cancellationToken)
    {
        var path = RoutePaths.Format(prefix);
        var now = time.GetUtcNow();
        var result = await database.InTransactionAsync<(ClaimOutcome, RouteClaim?, string?, string?)>(async (connection, transaction) =>
        {
            // First, so concurrent claim changes queue up behind this one before anyone reads.
            await RegistryStore.NextIndexAsync(connection, transaction, service, cancellationToken);
            var claims = await LoadAsync(connection, transaction, cancellationToken);
            if (claims.FirstOrDefault(c => c.PathPrefix == path && c.Service == service) is { } held)
            {
                return (ClaimOutcome.AlreadyHeld, held, null, null);
            }
            claims.AddRange(Configured());
            var existing = (await connection.QueryAsync<string>(new CommandDefinition(
                KnownServices, transaction: transaction, cancellationToken: cancellationToken))).ToHashSet(StringComparer.Ordinal);
            if (new RouteOwnership(claims).ConflictFor(service, prefix, existing) is { } conflict)
            {
                return (ClaimOutcome.Conflict, null, conflict.Holder, conflict.Prefix);
            }
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO registry_route_claims (path_prefix, service, created_by, created_at) VALUES (@path, @service, @createdBy, @at)",
                new { path, service, createdBy, at = now.ToUnixTimeMilliseconds() }, transaction, cancellationToken: cancellationToken));
            return (ClaimOutcome.Created, new RouteClaim(service, path, createdBy, DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds())), null, null);
        }, cancellationToken);
        if (result.Item1 == ClaimOutcome.Created)
        {
            registry.Changes.Notify();
        }
        return result;
    }

    public async Task<RouteClaim?> RemoveAsync(string[] prefix, CancellationToken cancellationToken)
    {
        var path = RoutePaths.Format(prefix);
        var removed = await database.InTransactionAsync(async (connection, transaction) =>
        {
            var claim = (await LoadAsync(connection, transaction, cancellationToken)).FirstOrDefault(c => c.PathPrefix == path);
            if (claim is null)
            {
                return null;
            }
            await RegistryStore.NextIndexAsync(connection, transaction, claim.Service, cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM registry_route_claims WHERE path_prefix = @path", new { path }, transaction, cancellationToken: cancellationToken));
            return claim;
        }, cancellationToken);
        if (removed is not null)
        {
            registry.Changes.Notify();
        }
        return removed;
    }

    private static async Task<List<RouteClaim>> LoadAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction? transaction, CancellationToken cancellationToken) =>
        (await connection.QueryAsync<(string PathPrefix, string Service, string CreatedBy, long CreatedAt)>(new CommandDefinition(
            "SELECT path_prefix, service, created_by, created_at FROM registry_route_claims ORDER BY path_prefix", transaction: transaction, cancellationToken: cancellationToken)))
        .Select(r => new RouteClaim(r.Service, r.PathPrefix, r.CreatedBy, DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt)))
        .ToList();
}

/// <summary>A row of <see cref="RouteClaimStore.ListStoredAsync"/>: an explicit claim, or a known service's default prefix.</summary>
internal sealed class StoredClaimRow
{
    public string Path { get; init; } = "";

    /// <summary><c>claim</c> or <c>default</c>.</summary>
    public string Source { get; init; } = "";

    public string Service { get; init; } = "";

    public string? CreatedBy { get; init; }

    public long? CreatedAt { get; init; }
}
