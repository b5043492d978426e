using Dapper;
using Fundament.Registry.Instances;
using Fundament.Storage;

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
internal sealed class RouteClaimStore(IDatabase database, RegistryStore registry, TimeProvider time)
{
    public async Task<RouteOwnership> OwnershipAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return new RouteOwnership(await LoadAsync(connection, null, cancellationToken));
    }

    /// <summary>Names of services with at least one registered instance.</summary>
    public async Task<IReadOnlySet<string>> ExistingServicesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition("SELECT DISTINCT service FROM registry_instances", cancellationToken: cancellationToken))).ToHashSet(StringComparer.Ordinal);
    }

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
            var existing = (await connection.QueryAsync<string>(new CommandDefinition(
                "SELECT DISTINCT service FROM registry_instances", transaction: transaction, cancellationToken: cancellationToken))).ToHashSet(StringComparer.Ordinal);
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
