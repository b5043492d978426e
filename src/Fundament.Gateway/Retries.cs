using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Fundament.Gateway;

/// <summary>
/// Retries a request on another destination when the first one could not be reached or answered
/// 502/503, for idempotent methods only (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) and only while
/// the cluster's <see cref="RetryBudget"/> allows, so retries cannot multiply an outage. Sits in
/// the proxy pipeline before load balancing: each attempt picks afresh among the destinations not
/// yet tried, and passive health sees every attempt. Bodies up to
/// <see cref="GatewayOptions.RetryBodyLimit"/> are buffered so they can be sent again; larger or
/// streamed bodies are never retried.
/// </summary>
internal sealed partial class RetryMiddleware
{
    public const string RetriesMetadata = "fundament.retries";

    private readonly RequestDelegate _next;
    private readonly GatewayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Counter<long> _retries;
    private readonly ConcurrentDictionary<string, RetryBudget> _budgets = new(StringComparer.Ordinal);

    public RetryMiddleware(RequestDelegate next, IOptions<GatewayOptions> options, TimeProvider time, ILogger<RetryMiddleware> logger, IMeterFactory meters)
    {
        _next = next;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _retries = meters.Create("Fundament.Gateway").CreateCounter<long>("fundament.gateway.retries", "{retry}", "Gateway requests sent again to another destination, by route and outcome.");
    }

    public async Task InvokeAsync(HttpContext context)
    {
        var proxy = context.GetReverseProxyFeature();
        var budget = _budgets.GetOrAdd(proxy.Cluster.Config.ClusterId, _ => new RetryBudget(_options.RetryBudgetPercent, _options.RetryBudgetMinPerSecond, _time));
        budget.RecordRequest();
        var maxRetries = MaxRetries(proxy);
        if (maxRetries == 0 || !IsIdempotent(context.Request.Method) || !PrepareBody(context.Request))
        {
            await _next(context);
            return;
        }

        var all = proxy.AvailableDestinations;
        if (all.Count < 2)
        {
            // Nowhere else to go: no retry state needed (the common single-instance case costs nothing).
            await _next(context);
            return;
        }
        var attempt = new RetryAttempt(proxy, all, maxRetries, budget);
        context.Features.Set(attempt);
        while (true)
        {
            await _next(context);
            var error = context.Features.Get<IForwarderErrorFeature>();
            if (!attempt.Claimed && !(IsConnectionFailure(error) && !context.Response.HasStarted && attempt.TryClaim()))
            {
                return;
            }
            var route = proxy.Route.Config.RouteId;
            LogRetry(_logger, context.Request.Method, route, proxy.ProxiedDestination?.DestinationId ?? "(none)", error?.Error.ToString() ?? context.Response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
            _retries.Add(1, new KeyValuePair<string, object?>("route", route));

            context.Response.Clear();
            context.Features.Set<IForwarderErrorFeature>(null);
            if (context.Request.Body.CanSeek)
            {
                context.Request.Body.Position = 0;
            }
            proxy.AvailableDestinations = attempt.NextDestinations();
        }
    }

    private int MaxRetries(IReverseProxyFeature proxy) =>
        proxy.Route.Config.Metadata?.TryGetValue(RetriesMetadata, out var value) == true && int.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : _options.MaxRetries;

    private static bool IsIdempotent(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method) || HttpMethods.IsPut(method) || HttpMethods.IsDelete(method);

    /// <summary>Whether the request can be sent twice: it has no body, or a small one now buffered.</summary>
    private bool PrepareBody(HttpRequest request)
    {
        if (request.HttpContext.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == false || request.ContentLength == 0)
        {
            return true;
        }
        if (request.ContentLength is { } length && length <= _options.RetryBodyLimit)
        {
            request.EnableBuffering(bufferThreshold: (int)Math.Min(length, 64 * 1024), bufferLimit: _options.RetryBodyLimit);
            return true;
        }
        return false;
    }

    /// <summary>The destination was not reached or dropped the connection before answering; nothing reached the client.</summary>
    private static bool IsConnectionFailure(IForwarderErrorFeature? error) =>
        error is { Error: ForwarderError.Request, Exception: not OperationCanceledException };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retrying {Method} on route {Route}: destination {Destination} failed with {Reason}")]
    private static partial void LogRetry(ILogger logger, string method, string route, string destination, string reason);
}

/// <summary>Per-request retry state, shared by <see cref="RetryMiddleware"/> and <see cref="RetryTransform"/>.</summary>
internal sealed class RetryAttempt(IReverseProxyFeature proxy, IReadOnlyList<DestinationState> all, int maxRetries, RetryBudget budget)
{
    private readonly List<DestinationState> _tried = new(2);

    public bool Claimed { get; private set; }

    /// <summary>Takes a retry if one is allowed now: retries left, an untried destination, and budget (which it spends).</summary>
    public bool TryClaim() =>
        Claimed = _tried.Count < maxRetries && all.Any(d => d != proxy.ProxiedDestination && !_tried.Contains(d)) && budget.TryRetry();

    /// <summary>Marks the current destination as tried and returns the ones left.</summary>
    public List<DestinationState> NextDestinations()
    {
        if (proxy.ProxiedDestination is { } failed)
        {
            _tried.Add(failed);
        }
        Claimed = false;
        return all.Where(d => !_tried.Contains(d)).ToList();
    }
}

/// <summary>
/// A 502 or 503 from a destination is held back (not sent to the client) when the request may be
/// retried, so <see cref="RetryMiddleware"/> can try another destination instead.
/// </summary>
internal sealed class RetryTransform : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context) => context.AddResponseTransform(transform =>
    {
        if (transform.ProxyResponse?.StatusCode is System.Net.HttpStatusCode.BadGateway or System.Net.HttpStatusCode.ServiceUnavailable
            && transform.HttpContext.Features.Get<RetryAttempt>() is { } attempt
            && attempt.TryClaim())
        {
            transform.SuppressResponseBody = true;
        }
        return ValueTask.CompletedTask;
    });
}

/// <summary>
/// Linkerd-style retry budget: retries may add at most <c>percent</c>% to the requests of the last
/// ten seconds, plus <c>minPerSecond</c> so a quiet service can still retry. Lock-free counters in
/// one-second buckets.
/// </summary>
internal sealed class RetryBudget(int percent, int minPerSecond, TimeProvider time)
{
    private const int Seconds = 10;
    private readonly Bucket[] _buckets = Enumerable.Range(0, Seconds).Select(_ => new Bucket()).ToArray();

    public void RecordRequest() => Current().AddRequest();

    public bool TryRetry()
    {
        var now = Now();
        long requests = 0, retries = 0;
        foreach (var bucket in _buckets)
        {
            if (now - bucket.Second < Seconds)
            {
                requests += bucket.Requests;
                retries += bucket.Retries;
            }
        }
        if (retries >= (long)minPerSecond * Seconds + requests * percent / 100)
        {
            return false;
        }
        Current().AddRetry();
        return true;
    }

    private long Now() => time.GetTimestamp() / time.TimestampFrequency;

    private Bucket Current()
    {
        var now = Now();
        var bucket = _buckets[now % Seconds];
        if (bucket.Second != now)
        {
            bucket.Reset(now);
        }
        return bucket;
    }

    private sealed class Bucket
    {
        private long _second = -1;
        private long _requests;
        private long _retries;

        public long Second => Volatile.Read(ref _second);

        public long Requests => Volatile.Read(ref _requests);

        public long Retries => Volatile.Read(ref _retries);

        public void AddRequest() => Interlocked.Increment(ref _requests);

        public void AddRetry() => Interlocked.Increment(ref _retries);

        public void Reset(long second)
        {
            var seen = Volatile.Read(ref _second);
            if (seen != second && Interlocked.CompareExchange(ref _second, second, seen) == seen)
            {
                Interlocked.Exchange(ref _requests, 0);
                Interlocked.Exchange(ref _retries, 0);
            }
        }
    }
}
