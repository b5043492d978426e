using System.Globalization;
using System.Text.Json;

namespace Fundament.Client;

/// <summary>Adds this service's resolved Fundament configuration and keeps it current.</summary>
internal sealed class FundamentConfigurationSource(FundamentClientOptions options) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => new FundamentConfigurationProvider(options);
}

/// <summary>
/// Loads the resolved view once at start (briefly waiting for Fundament), then follows it with a
/// blocking watch and reloads on every change, so <c>IOptionsMonitor&lt;T&gt;</c> sees new values
/// within a second or so. JSON objects become nested keys (<c>Orders:MaxItems</c>).
/// </summary>
internal sealed class FundamentConfigurationProvider(FundamentClientOptions options) : ConfigurationProvider, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(5);

    private readonly FundamentApi _api = new(options, TimeProvider.System);
    private readonly CancellationTokenSource _stop = new();
    private Task? _watch;
    private long _index = -1;

    public override void Load()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var (index, values) = _api.ResolvedAsync(options.Service!, options.Environment, null, Wait, timeout.Token).GetAwaiter().GetResult();
            Apply(index, values);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            // Fundament is not reachable yet: start empty and pick the values up from the watch.
        }
        _watch ??= Task.Run(WatchAsync);
    }

    private async Task WatchAsync()
    {
        var delay = TimeSpan.FromSeconds(1);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var (index, values) = await _api.ResolvedAsync(options.Service!, options.Environment, _index < 0 ? null : _index, Wait, _stop.Token).ConfigureAwait(false);
                if (index != _index)
                {
                    Apply(index, values);
                    OnReload();
                }
                delay = TimeSpan.FromSeconds(1);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or JsonException)
            {
                try
                {
                    await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromSeconds(Math.Min(30, delay.TotalSeconds * 2));
            }
        }
    }

    private void Apply(long index, Dictionary<string, JsonElement> values)
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in values)
        {
            Flatten(data, key, value);
        }
        Data = data;
        _index = index;
    }

    internal static void Flatten(IDictionary<string, string?> data, string prefix, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in value.EnumerateObject())
                {
                    Flatten(data, $"{prefix}:{property.Name}", property.Value);
                }
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    Flatten(data, $"{prefix}:{(i++).ToString(CultureInfo.InvariantCulture)}", item);
                }
                break;
            case JsonValueKind.String:
                data[prefix] = value.GetString();
                break;
            case JsonValueKind.True:
                data[prefix] = "true";
                break;
            case JsonValueKind.False:
                data[prefix] = "false";
                break;
            case JsonValueKind.Null:
                data[prefix] = null;
                break;
            default:
                data[prefix] = value.GetRawText();
                break;
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
        _api.Dispose();
    }
}
