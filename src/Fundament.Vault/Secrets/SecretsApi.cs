using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Fundament.Vault.Policies;

namespace Fundament.Vault.Secrets;

/// <summary>
/// The secrets API. Every call checks the caller's policies itself (the route only requires an
/// authenticated caller) and every outcome, including denials, goes to the audit log with the
/// path and version, never the value.
/// </summary>
internal static partial class SecretsApi
{
    public static IEndpointRouteBuilder MapSecretsApi(this IEndpointRouteBuilder endpoints)
    {
        var secrets = endpoints.MapGroup("/api/v1").WithTags("Vault").RequireAuthorization(Fundament.Core.Security.Policies.Authenticated);
        secrets.AddEndpointFilterFactory(SlashesInPath);
        secrets.MapGet("/secrets", ListAsync).WithName("ListSecrets")
            .WithSummary("Secret paths under a prefix that the caller may list, by path; never values. A page at a time: limit (1-500, default 100) and after "
                + "(the cursor in the Link rel=next header).");
        secrets.MapPut("/secrets/{**path}", WriteAsync).WithName("WriteSecret")
            .WithSummary("Writes a new version. cas: 0 writes only a new secret, N only if the current version is N (else 409).");
        secrets.MapGet("/secrets/{**path}", ReadAsync).WithName("ReadSecret").WithSummary("Reads the current or a given version.");
        secrets.MapDelete("/secrets/{**path}", SoftDeleteAsync).WithName("DeleteSecretVersions")
            .WithSummary("Soft-deletes versions (default: the current one); undelete brings them back.");
        secrets.MapPost("/secret-undelete/{**path}", UndeleteAsync).WithName("UndeleteSecretVersions").WithSummary("Restore soft-deleted versions of a secret");
        secrets.MapPost("/secret-destroy/{**path}", DestroyAsync).WithName("DestroySecretVersions")
            .WithSummary("Erases the ciphertext of versions for good.");
        secrets.MapGet("/secret-metadata/{**path}", MetadataAsync).WithName("GetSecretMetadata").WithSummary("Get a secret's metadata and versions (never values)");
        secrets.MapPatch("/secret-metadata/{**path}", UpdateMetadataAsync).WithName("UpdateSecretMetadata").WithSummary("Change a secret's metadata (max versions, custom metadata)");
        secrets.MapDelete("/secret-metadata/{**path}", PurgeAsync).WithName("PurgeSecret")
            .WithSummary("Removes the secret, every version and its metadata.");
        return endpoints;
    }

    /// <summary>
    /// A secret path is a catch-all route value. OpenAPI cannot describe one (path parameters are
    /// single segments), so generated clients escape its slashes as %2F, which routing leaves
    /// encoded. They mean the same path as the slashes: turned back before anything reads the path.
    /// </summary>
    private static EndpointFilterDelegate SlashesInPath(EndpointFilterFactoryContext factory, EndpointFilterDelegate next)
    {
        var index = Array.FindIndex(factory.MethodInfo.GetParameters(), p => p.Name == "path" && p.ParameterType == typeof(string));
        return index < 0 ? next : context =>
        {
            if (context.Arguments[index] is string path && path.Contains('%', StringComparison.Ordinal))
            {
                context.Arguments[index] = path.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
            }
            return next(context);
        };
    }

    private static async Task<Results<Ok<SecretListResponse>, ValidationProblem>> ListAsync(
        string? prefix, int? limit, string? after, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, HttpContext context, CancellationToken cancellationToken)
    {
        prefix ??= "";
        var errors = new ValidationErrors().MaxLength("prefix", prefix, SecretPath.MaxLength);
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var access = await policies.AccessForAsync(context.User, cancellationToken);
        // Paths the caller may not list are skipped batch by batch; a cursor is always a path it may list.
        var listable = await Paging.FillAsync(after, Paging.Take(size), (cursor, count) => store.ListAsync(prefix, cursor, count, cancellationToken), p => p, p => access.Allows("list", p));
        var paths = Paging.Page(context, listable, size, p => p);
        await auditor.RecordAsync(context, "secret.list", prefix, null, AuditOutcome.Success, cancellationToken);
        return TypedResults.Ok(new SecretListResponse(paths));
    }

    private static async Task<Results<Ok<SecretWriteResponse>, ValidationProblem, ProblemHttpResult>> WriteAsync(
        string path, SecretWriteRequest request, IDatabase database, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, IOptions<VaultOptions> options,
        HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (SecretPath.Problem(path) is { } pathProblem)
        {
            errors.Add("path", pathProblem);
        }
        if (request.Value is not { ValueKind: not (JsonValueKind.Undefined or JsonValueKind.Null) } value)
        {
            errors.Add("value", "value is required (a string or any JSON value).");
            value = default;
        }
        if (request.Cas is < 0)
        {
            errors.Add("cas", "cas must be 0 (create only) or a version number.");
        }
        if (request.MaxVersions is < 1 or > 1000)
        {
            errors.Add("maxVersions", "maxVersions must be between 1 and 1000.");
        }
        var (rotateEvery, clearRotation) = ParseRotation(request.RotateEvery, errors);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var bytes = Encoding.UTF8.GetBytes(value.GetRawText());
        if (bytes.Length > options.Value.MaxValueBytes)
        {
            return Problems.Validation("value", $"value must be at most {options.Value.MaxValueBytes} bytes of JSON.");
        }
        var access = await policies.AccessForAsync(context.User, cancellationToken);
        if (!access.Allows("write", path))
        {
            await auditor.RecordAsync(context, "secret.write", path, null, AuditOutcome.Denied, cancellationToken);
            return Denied(path);
        }
        try
        {
            // The new version and its audit entry commit together.
            var result = await database.InUnitOfWorkAsync(async () =>
            {
                var result = await store.PutAsync(path, bytes, request.Cas, request.MaxVersions, rotateEvery, clearRotation, context.User.ActorId() ?? "unknown", cancellationToken);
                await auditor.RecordAsync(context, "secret.write", path, result.Version, result.Ok ? AuditOutcome.Success : AuditOutcome.Failure, cancellationToken,
                    result.Ok ? null : "cas_mismatch");
                return result;
            }, cancellationToken);
            if (!result.Ok)
            {
                return Problems.Conflict($"cas {request.Cas} does not match the current version {result.Version}.");
            }
            return TypedResults.Ok(new SecretWriteResponse(result.Version));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static async Task<Results<Ok<SecretReadResponse>, ValidationProblem, ProblemHttpResult>> ReadAsync(
        string path, int? version, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, VaultMetrics metrics, ILoggerFactory loggers,
        HttpContext context, CancellationToken cancellationToken)
    {
        if (SecretPath.Problem(path) is { } pathProblem)
        {
            return Problems.Validation("path", pathProblem);
        }
        if (version is < 1)
        {
            return Problems.Validation("version", "version must be 1 or more.");
        }
        var access = await policies.AccessForAsync(context.User, cancellationToken);
        if (!access.Allows("read", path))
        {
            await auditor.RecordAsync(context, "secret.read", path, version, AuditOutcome.Denied, cancellationToken);
            return Denied(path);
        }
        ReadResult result;
        try
        {
            result = await store.ReadAsync(path, version, cancellationToken);
        }
        catch (CryptographicException)
        {
            metrics.IntegrityFailure();
            LogIntegrityFailure(loggers.CreateLogger("Fundament.Vault"), path, version);
            await store.RecordIntegrityFailureAsync(path, version, CancellationToken.None);
            await auditor.RecordAsync(context, "secret.read", path, version, AuditOutcome.Failure, cancellationToken, "integrity_check_failed");
            return TypedResults.Problem(statusCode: 500, title: "Secret integrity check failed",
                detail: "The stored secret did not pass its integrity check and was not returned. The event was logged and audited.");
        }
        var outcome = result.Status == ReadStatus.Ok ? AuditOutcome.Success : AuditOutcome.Failure;
        await auditor.RecordAsync(context, "secret.read", path, result.Status == ReadStatus.NotFound ? version : result.Version, outcome, cancellationToken,
            result.Status == ReadStatus.Ok ? null : result.Status.ToString().ToLowerInvariant());
        switch (result.Status)
        {
            case ReadStatus.NotFound:
                return Problems.NotFound(version is null ? "The secret" : $"Version {version} of the secret");
            case ReadStatus.Deleted:
                return TypedResults.Problem(statusCode: 404, title: "Not found", detail: $"Version {result.Version} was deleted; undelete it to read it again.");
            case ReadStatus.Destroyed:
                return TypedResults.Problem(statusCode: 404, title: "Not found", detail: $"Version {result.Version} was destroyed.");
        }
        try
        {
            using var document = JsonDocument.Parse(result.Value);
            return TypedResults.Ok(new SecretReadResponse(document.RootElement.Clone(), result.Version, result.CreatedAt));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(result.Value);
        }
    }

    private static Task<Results<Ok<VersionsChangedResponse>, ValidationProblem, ProblemHttpResult>> SoftDeleteAsync(
        string path, string? versions, IDatabase database, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var list = ParseVersionList(versions, errors);
        return errors.Any
            ? Task.FromResult<Results<Ok<VersionsChangedResponse>, ValidationProblem, ProblemHttpResult>>(errors.ToProblem())
            : ChangeAsync(path, list, VersionChange.Delete, "secret.delete", database, store, policies, auditor, context, cancellationToken);
    }

    private static Task<Results<Ok<VersionsChangedResponse>, ValidationProblem, ProblemHttpResult>> UndeleteAsync(
        string path, VersionsRequest request, IDatabase database, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, HttpContext context, CancellationToken cancellationToken) =>
        ChangeAsync(path, request.Versions, VersionChange.Undelete, "secret.undelete", database, store, policies, auditor, context, cancellationToken);

    private static Task<Results<Ok<VersionsChangedResponse>, ValidationProblem, ProblemHttpResult>> DestroyAsync(
        string path, VersionsRequest request, IDatabase database, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, HttpContext context, CancellationToken cancellationToken) =>
        ChangeAsync(path, request.Versions, VersionChange.Destroy, "secret.destroy", database, store, policies, auditor, context, cancellationToken);

    private static async Task<Results<Ok<VersionsChangedResponse>, ValidationProblem, ProblemHttpResult>> ChangeAsync(
        string path, IReadOnlyList<int>? versions, VersionChange change, string action, IDatabase database, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor,
        HttpContext context, CancellationToken cancellationToken)
    {
        if (SecretPath.Problem(path) is { } pathProblem)
        {
            return Problems.Validation("path", pathProblem);
        }
        if (versions is { Count: > 1000 } || versions?.Any(v => v < 1) == true)
        {
            return Problems.Validation("versions", "versions must be at most 1000 numbers of 1 or more.");
        }
        var access = await policies.AccessForAsync(context.User, cancellationToken);
        if (!access.Allows("delete", path))
        {
            await auditor.RecordAsync(context, action, path, null, AuditOutcome.Denied, cancellationToken);
            return Denied(path);
        }
        IReadOnlyList<int> targets;
        if (versions is { Count: > 0 })
        {
            targets = versions;
        }
        else if (change == VersionChange.Delete && await store.CurrentVersionAsync(path, cancellationToken) is { } current)
        {
            targets = [current];
        }
        else
        {
            return change == VersionChange.Delete ? Problems.NotFound("The secret") : Problems.Validation("versions", "versions is required.");
        }
        var changed = await database.InUnitOfWorkAsync(async () =>
        {
            var changed = await store.ChangeVersionsAsync(path, targets, change, cancellationToken);
            await auditor.RecordAsync(context, action, path, null, AuditOutcome.Success, cancellationToken, "versions=" + string.Join(",", targets));
            return changed;
        }, cancellationToken);
        return TypedResults.Ok(new VersionsChangedResponse(changed));
    }

    private static async Task<Results<Ok<SecretMetadata>, ValidationProblem, ProblemHttpResult>> MetadataAsync(
        string path, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, HttpContext context, CancellationToken cancellationToken)
    {
        if (SecretPath.Problem(path) is { } pathProblem)
        {
            return Problems.Validation("path", pathProblem);
        }
        var access = await policies.AccessForAsync(context.User, cancellationToken);
        if (!access.Allows("list", path) && !access.Allows("read", path))
        {
            await auditor.RecordAsync(context, "secret.metadata", path, null, AuditOutcome.Denied, cancellationToken);
            return Denied(path);
        }
        return await store.MetadataAsync(path, cancellationToken) is { } metadata ? TypedResults.Ok(metadata) : Problems.NotFound("The secret");
    }

    private static async Task<Results<Ok<SecretMetadata>, ValidationProblem, ProblemHttpResult>> UpdateMetadataAsync(
        string path, SecretMetadataRequest request, IDatabase database, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (SecretPath.Problem(path) is { } pathProblem)
        {
            errors.Add("path", pathProblem);
        }
        if (request.MaxVersions is < 1 or > 1000)
        {
            errors.Add("maxVersions", "maxVersions must be between 1 and 1000.");
        }
        var (rotateEvery, clear) = ParseRotation(request.RotateEvery, errors);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var access = await policies.AccessForAsync(context.User, cancellationToken);
        if (!access.Allows("write", path))
        {
            await auditor.RecordAsync(context, "secret.metadata_update", path, null, AuditOutcome.Denied, cancellationToken);
            return Denied(path);
        }
        var updated = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await store.UpdateMetadataAsync(path, request.MaxVersions, rotateEvery, clear, cancellationToken))
            {
                return false;
            }
            await auditor.RecordAsync(context, "secret.metadata_update", path, null, AuditOutcome.Success, cancellationToken);
            return true;
        }, cancellationToken);
        if (!updated)
        {
            return Problems.NotFound("The secret");
        }
        return TypedResults.Ok((await store.MetadataAsync(path, cancellationToken))!);
    }

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> PurgeAsync(
        string path, IDatabase database, SecretStore store, SecretPolicyStore policies, VaultAuditor auditor, HttpContext context, CancellationToken cancellationToken)
    {
        if (SecretPath.Problem(path) is { } pathProblem)
        {
            return Problems.Validation("path", pathProblem);
        }
        var access = await policies.AccessForAsync(context.User, cancellationToken);
        if (!access.Allows("delete", path))
        {
            await auditor.RecordAsync(context, "secret.purge", path, null, AuditOutcome.Denied, cancellationToken);
            return Denied(path);
        }
        var purged = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await store.PurgeAsync(path, cancellationToken))
            {
                return false;
            }
            await auditor.RecordAsync(context, "secret.purge", path, null, AuditOutcome.Success, cancellationToken);
            return true;
        }, cancellationToken);
        if (!purged)
        {
            return Problems.NotFound("The secret");
        }
        return TypedResults.NoContent();
    }

    private static ProblemHttpResult Denied(string path) =>
        Problems.Forbidden($"No secret policy grants you this on '{path}'.");

    private static (TimeSpan? Value, bool Clear) ParseRotation(string? text, ValidationErrors errors)
    {
        if (text is null)
        {
            return (null, false);
        }
        if (!Durations.TryParse(text, out var value))
        {
            errors.Add("rotateEvery", "rotateEvery must be a duration like 30d, 12h or 90m; 0 turns rotation off.");
            return (null, false);
        }
        if (value == TimeSpan.Zero)
        {
            return (null, true);
        }
        if (value < TimeSpan.FromMinutes(1) || value > TimeSpan.FromDays(3650))
        {
            errors.Add("rotateEvery", "rotateEvery must be between 1m and 3650d.");
        }
        return (value, false);
    }

    private static IReadOnlyList<int> ParseVersionList(string? text, ValidationErrors errors)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }
        var list = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v < 1 || list.Count >= 1000)
            {
                errors.Add("versions", "versions must be a comma-separated list of version numbers.");
                return [];
            }
            list.Add(v);
        }
        return list;
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "Secret {Path} version {Version} failed its integrity check: the stored ciphertext was altered, moved or corrupted")]
    private static partial void LogIntegrityFailure(ILogger logger, string path, int? version);
}

/// <summary>Body of <c>PUT /api/v1/secrets/{path}</c>.</summary>
/// <param name="Value">Required: a string or any JSON value.</param>
/// <param name="Cas">Optional check-and-set: 0 = only if the secret does not exist, N = only if the current version is N.</param>
/// <param name="MaxVersions">Optional: versions to keep (1-1000); default from <c>Fundament:Vault:DefaultMaxVersions</c>.</param>
/// <param name="RotateEvery">Optional: rotation interval (<c>30d</c>); <c>0</c> turns it off.</param>
public sealed record SecretWriteRequest(JsonElement? Value, int? Cas, int? MaxVersions, string? RotateEvery);

public sealed record SecretWriteResponse(int Version);

public sealed record SecretReadResponse(JsonElement Value, int Version, DateTimeOffset CreatedAt);

public sealed record SecretListResponse(IReadOnlyList<string> Paths);

/// <summary>Body of undelete and destroy: the versions to act on.</summary>
public sealed record VersionsRequest(IReadOnlyList<int>? Versions);

public sealed record VersionsChangedResponse(int Changed);

/// <summary>Body of <c>PATCH /api/v1/secret-metadata/{path}</c>; left-out fields are unchanged.</summary>
public sealed record SecretMetadataRequest(int? MaxVersions, string? RotateEvery);
