using System.Collections.Concurrent;
using System.Text.Json;

namespace Fundament.Client;

/// <summary>Reads secrets from Fundament's vault, as this service's client, with a short cache.</summary>
public interface ISecretStore
{
    /// <summary>The secret's value as a string (JSON text for non-string values), or null when it does not exist.</summary>
    /// <exception cref="HttpRequestException">Fundament refused (no policy grants this service the path) or is unreachable.</exception>
    ValueTask<string?> GetAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>The secret's value deserialized as <typeparamref name="T"/>, or default when it does not exist.</summary>
    ValueTask<T?> GetAsync<T>(string path, CancellationToken cancellationToken = default);

    /// <summary>Drops cached values so the next read goes to Fundament (after a rotation, say).</summary>
    void Invalidate(string? path = null);
}

internal sealed class SecretStore(FundamentApi api, FundamentClientOptions options, TimeProvider time) : ISecretStore
{
    private readonly ConcurrentDictionary<string, (JsonElement? Value, DateTimeOffset Until)> _cache = new(StringComparer.Ordinal);

    public async ValueTask<string?> GetAsync(string path, CancellationToken cancellationToken = default)
    {
        var value = await ReadAsync(path, cancellationToken).ConfigureAwait(false);
        return value is not { } v ? null : v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText();
    }

    public async ValueTask<T?> GetAsync<T>(string path, CancellationToken cancellationToken = default)
    {
        var value = await ReadAsync(path, cancellationToken).ConfigureAwait(false);
        return value is { } v ? v.Deserialize<T>(JsonSerializerOptions.Web) : default;
    }

    public void Invalidate(string? path = null)
    {
        if (path is null)
        {
            _cache.Clear();
        }
        else
        {
            _cache.TryRemove(path, out _);
        }
    }

    private async ValueTask<JsonElement?> ReadAsync(string path, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(path, out var cached) && time.GetUtcNow() < cached.Until)
        {
            return cached.Value;
        }
        var value = await api.SecretAsync(path, cancellationToken).ConfigureAwait(false);
        _cache[path] = (value, time.GetUtcNow() + options.SecretCacheTtl);
        return value;
    }
}
