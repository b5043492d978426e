using System.Diagnostics.Metrics;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Fundament.Core.Keys;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.Tokens;

namespace Fundament.Identity.Tokens;

/// <summary>
/// Token signing keys and their schedule. A key signs for <see cref="IdentityOptions.SigningKeyLifetime"/>;
/// its successor is created <see cref="Prepublish"/> before it takes over, so every replica and every
/// JWKS cache already holds the new public key when the first token signed with it arrives. A retired
/// key stays in the JWKS until the last token it signed has expired. Private keys are stored
/// envelope-encrypted under the master key.
/// </summary>
internal sealed partial class SigningKeyStore : IStartupTask, IEnvelopeHolder
{
    private readonly IDatabase database;
    private readonly EnvelopeEncryption encryption;
    private readonly TimeProvider time;
    private readonly IOptions<IdentityOptions> options;
    private readonly ILogger<SigningKeyStore> logger;

    public SigningKeyStore(IDatabase database, EnvelopeEncryption encryption, TimeProvider time, IOptions<IdentityOptions> options,
        ILogger<SigningKeyStore> logger, System.Diagnostics.Metrics.IMeterFactory meters)
    {
        this.database = database;
        this.encryption = encryption;
        this.time = time;
        this.options = options;
        this.logger = logger;
        // Rotation is automatic; this is the sign that it stopped (a node that cannot write, a failing rotation).
        meters.Create("Fundament.Identity.Keys").CreateObservableGauge("fundament.identity.signing_key.term_remaining", ObserveTermRemaining, "s",
            "Seconds until the signing key in use reaches the end of its term (Fundament:Identity:SigningKeyLifetime); negative when rotation is overdue.");
    }

    private IEnumerable<System.Diagnostics.Metrics.Measurement<double>> ObserveTermRemaining()
    {
        var now = time.GetUtcNow();
        if (_keys.Where(k => k.ActivatesAt <= now.ToUnixTimeMilliseconds()).MaxBy(k => k.ActivatesAt) is { } current)
        {
            yield return new((DateTimeOffset.FromUnixTimeMilliseconds(current.ActivatesAt) + options.Value.SigningKeyLifetime - now).TotalSeconds);
        }
    }

    /// <summary>How far ahead of use a new key is published; more than <see cref="RefreshInterval"/>.</summary>
    public static readonly TimeSpan Prepublish = TimeSpan.FromMinutes(2);

    /// <summary>How often replicas reload the key set.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(30);

    private const long RotationLockKey = 0x46554E444B4559;

    private readonly ConcurrentDictionary<string, SigningCredentials> _signers = new(StringComparer.Ordinal);
    private volatile IReadOnlyList<StoredKey> _keys = [];

    public int Order => 5;

    public string Name => "token signing keys";

    public async Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken)
    {
        var count = await EnvelopeColumn.RewrapAsync(database, current, "identity_signing_keys", ["kid"], "private_key", null, cancellationToken);
        await RefreshAsync(cancellationToken);
        return count;
    }

    public Task<IReadOnlyList<string>> SampleKeyIdsAsync(CancellationToken cancellationToken) =>
        EnvelopeColumn.KeyIdsAsync(database, "identity_signing_keys", "private_key", 100, cancellationToken);

    public async Task RunAsync(CancellationToken cancellationToken) => await RotateIfDueAsync(cancellationToken);

    /// <summary>Creates the first key, or the next one when the current key nears the end of its term; then reloads.</summary>
    public async Task RotateIfDueAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        var created = await database.InTransactionAsync(async (connection, transaction) =>
        {
            if (database.Dialect == SqlDialect.Postgres)
            {
                await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@key)", new { key = RotationLockKey }, transaction, cancellationToken: cancellationToken));
            }
            var rows = (await connection.QueryAsync<(string Kid, long ActivatesAt)>(new CommandDefinition(
                "SELECT kid, activates_at FROM identity_signing_keys", transaction: transaction, cancellationToken: cancellationToken))).ToList();
            if (rows.Any(r => r.ActivatesAt > nowMs))
            {
                return null;
            }
            var current = rows.Where(r => r.ActivatesAt <= nowMs).OrderByDescending(r => r.ActivatesAt).Select(r => ((string Kid, long ActivatesAt)?)r).FirstOrDefault();
            DateTimeOffset activatesAt;
            if (current is null)
            {
                activatesAt = now;
            }
            else
            {
                var termEnds = DateTimeOffset.FromUnixTimeMilliseconds(current.Value.ActivatesAt) + o.SigningKeyLifetime;
                if (now < termEnds - Prepublish)
                {
                    return null;
                }
                activatesAt = termEnds > now + Prepublish ? termEnds : now + Prepublish;
                var expiresAt = activatesAt + o.AccessTokenLifetime + o.ClockSkew;
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE identity_signing_keys SET retires_at = @retires, expires_at = @expires WHERE kid = @kid",
                    new { kid = current.Value.Kid, retires = activatesAt.ToUnixTimeMilliseconds(), expires = expiresAt.ToUnixTimeMilliseconds() },
                    transaction, cancellationToken: cancellationToken));
            }
            var key = CreateKey(o.SigningAlgorithm);
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO identity_signing_keys (kid, algorithm, public_jwk, private_key, created_at, activates_at)
                VALUES (@Kid, @Algorithm, @PublicJwk, @PrivateKey, @now, @activatesAt)
                """, new { key.Kid, key.Algorithm, key.PublicJwk, key.PrivateKey, now = nowMs, activatesAt = activatesAt.ToUnixTimeMilliseconds() },
                transaction, cancellationToken: cancellationToken));
            // Keys whose last token expired a day ago are of no further use.
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM identity_signing_keys WHERE expires_at IS NOT NULL AND expires_at < @cutoff",
                new { cutoff = (now - TimeSpan.FromDays(1)).ToUnixTimeMilliseconds() }, transaction, cancellationToken: cancellationToken));
            return key.Kid;
        }, cancellationToken);
        if (created is not null)
        {
            LogCreated(logger, created, options.Value.SigningAlgorithm);
        }
        await RefreshAsync(cancellationToken);
    }

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<StoredKey>(new CommandDefinition(
            "SELECT kid, algorithm, public_jwk AS PublicJwk, private_key AS PrivateKey, activates_at AS ActivatesAt, retires_at AS RetiresAt, expires_at AS ExpiresAt FROM identity_signing_keys ORDER BY activates_at",
            cancellationToken: cancellationToken));
        _keys = rows.ToList();
    }

    /// <summary>The key that signs now: the newest whose activation has come.</summary>
    public SigningCredentials CurrentSigner()
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var key = _keys.Where(k => k.ActivatesAt <= now).MaxBy(k => k.ActivatesAt)
            ?? throw new InvalidOperationException("No signing key is active yet.");
        return _signers.GetOrAdd(key.Kid, _ => LoadSigner(key));
    }

    /// <summary>The id of the key that signs now (cheap: no signer is built).</summary>
    public string? CurrentKid
    {
        get
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            StoredKey? current = null;
            foreach (var key in _keys)
            {
                if (key.ActivatesAt <= now && (current is null || key.ActivatesAt > current.ActivatesAt))
                {
                    current = key;
                }
            }
            return current?.Kid;
        }
    }

    /// <summary>Public keys that may have signed a still-valid token (the JWKS).</summary>
    public IReadOnlyList<StoredKey> Published()
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return _keys.Where(k => k.ExpiresAt is null || k.ExpiresAt > now).ToList();
    }

    /// <summary>Whether tokens signed with <paramref name="kid"/> are still accepted (without allocating: asked on every request).</summary>
    public bool IsPublished(string kid)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var key in _keys)
        {
            if (string.Equals(key.Kid, kid, StringComparison.Ordinal) && (key.ExpiresAt is null || key.ExpiresAt > now))
            {
                return true;
            }
        }
        return false;
    }

    public IEnumerable<SecurityKey> ValidationKeys(string? kid) =>
        Published().Where(k => kid is null || string.Equals(k.Kid, kid, StringComparison.Ordinal)).Select(k => k.ValidationKey);

    private SigningCredentials LoadSigner(StoredKey key)
    {
        var pkcs8 = encryption.Decrypt(key.PrivateKey, Aad(key.Kid));
        try
        {
            if (key.Algorithm == SecurityAlgorithms.EcdsaSha256)
            {
                var ecdsa = ECDsa.Create();
                ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
                return new SigningCredentials(new ECDsaSecurityKey(ecdsa) { KeyId = key.Kid }, SecurityAlgorithms.EcdsaSha256);
            }
            var rsa = RSA.Create();
            rsa.ImportPkcs8PrivateKey(pkcs8, out _);
            return new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = key.Kid }, SecurityAlgorithms.RsaSha256);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    private NewKey CreateKey(string algorithm)
    {
        Dictionary<string, string> jwk;
        byte[] pkcs8;
        if (algorithm == SecurityAlgorithms.EcdsaSha256)
        {
            using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var p = ecdsa.ExportParameters(false);
            jwk = new() { ["crv"] = "P-256", ["kty"] = "EC", ["x"] = B64(p.Q.X!), ["y"] = B64(p.Q.Y!) };
            pkcs8 = ecdsa.ExportPkcs8PrivateKey();
        }
        else
        {
            using var rsa = RSA.Create(3072);
            var p = rsa.ExportParameters(false);
            jwk = new() { ["e"] = B64(p.Exponent!), ["kty"] = "RSA", ["n"] = B64(p.Modulus!) };
            pkcs8 = rsa.ExportPkcs8PrivateKey();
        }
        // RFC 7638 thumbprint: the required members, sorted, no whitespace.
        var thumbprint = JsonSerializer.Serialize(new SortedDictionary<string, string>(jwk, StringComparer.Ordinal));
        var kid = B64(SHA256.HashData(Encoding.UTF8.GetBytes(thumbprint)));
        jwk["kid"] = kid;
        jwk["use"] = "sig";
        jwk["alg"] = algorithm;
        try
        {
            return new NewKey(kid, algorithm, JsonSerializer.Serialize(jwk), encryption.Encrypt(pkcs8, Aad(kid)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    private static byte[] Aad(string kid) => Encoding.UTF8.GetBytes("fundament:identity:signing-key:" + kid);

    private static string B64(byte[] bytes) => WebEncoders.Base64UrlEncode(bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Created token signing key {Kid} ({Algorithm})")]
    private static partial void LogCreated(ILogger logger, string kid, string algorithm);

    private sealed record NewKey(string Kid, string Algorithm, string PublicJwk, byte[] PrivateKey);
}

internal sealed class StoredKey
{
    private JsonWebKey? _validationKey;

    public string Kid { get; init; } = "";
    public string Algorithm { get; init; } = "";
    public string PublicJwk { get; init; } = "";
    public byte[] PrivateKey { get; init; } = [];
    public long ActivatesAt { get; init; }
    public long? RetiresAt { get; init; }
    public long? ExpiresAt { get; init; }

    public JsonWebKey ValidationKey => _validationKey ??= new JsonWebKey(PublicJwk);
}
