using Fundament.Core.Keys;
using Fundament.Vault.Policies;
using Fundament.Vault.Secrets;

namespace Fundament.Vault;

internal static class VaultAdminApi
{
    public static RouteGroupBuilder MapVaultAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/vault").WithTags("Vault").RequireAuthorization(VaultPermissions.Admin);
        group.MapGet("/rotation-due", RotationDueAsync).WithName("SecretsDueForRotation")
            .WithSummary("Secrets whose current version is older than their rotateEvery, most overdue first (then by path). A page at a time: limit (1-500, default 100) "
                + "and after (the cursor in the Link rel=next header).");
        group.MapPost("/rotate-master-key", RotateMasterKeyAsync).WithName("RotateMasterKey")
            .WithSummary("Re-wraps every data key under the current master key (configure the new key as Fundament:MasterKey and the old one in Fundament:PreviousMasterKeys first).");
        return group;
    }

    private static async Task<Results<Ok<IReadOnlyList<RotationDue>>, ValidationProblem>> RotationDueAsync(
        int? limit, string? after, SecretStore store, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        // The cursor is "<due, Unix ms> <path>".
        long? afterDue = null;
        string? afterPath = null;
        if (after is not null && !errors.Any)
        {
            var parts = Paging.Split(after, 2);
            if (long.TryParse(parts[0], System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var due))
            {
                (afterDue, afterPath) = (due, parts[1]);
            }
            else
            {
                errors.Add(Paging.AfterParameter, "after must be a cursor from this list's Link header.");
            }
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var rows = await store.RotationDueAsync(afterDue, afterPath, Paging.Take(size), cancellationToken);
        return TypedResults.Ok(Paging.Page(context, rows, size,
            d => Paging.Compose(d.DueAt.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture), d.Path)));
    }

    private static async Task<Ok<MasterKeyRotationResponse>> RotateMasterKeyAsync(
        IEnumerable<IEnvelopeHolder> holders, EnvelopeEncryption encryption, MasterKeyRing ring, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var failures = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var holder in holders)
        {
            var result = await holder.RewrapAsync(encryption, cancellationToken);
            counts[holder.Name] = result.Rewrapped;
            if (result.Failed > 0)
            {
                failures[holder.Name] = result.Failed;
            }
        }
        var details = counts.ToDictionary(c => c.Key, c => c.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var (name, failed) in failures)
        {
            details[name + " (failed)"] = failed.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        await audit.AppendAsync(new AuditEvent("vault.rotate_master_key", failures.Count == 0 ? AuditOutcome.Success : AuditOutcome.Failure)
        {
            Target = $"master_key:{encryption.CurrentKeyId}",
            Details = details,
        }.From(context), cancellationToken);
        return TypedResults.Ok(new MasterKeyRotationResponse(encryption.CurrentKeyId, counts, failures, ring.PreviousIds));
    }
}

/// <summary>Result of a master key rotation: what was re-wrapped under <see cref="KeyId"/>.</summary>
/// <param name="Failed">Envelopes that could not be unwrapped (corrupted, or under a key no longer configured), by holder; they are left as they are.</param>
/// <param name="PreviousKeyIds">Earlier keys still configured; remove them from the settings once this reports no more re-wraps.</param>
public sealed record MasterKeyRotationResponse(string KeyId, IReadOnlyDictionary<string, int> Rewrapped, IReadOnlyDictionary<string, int> Failed, IReadOnlyList<string> PreviousKeyIds);
