using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Fundament.Core.Http;

/// <summary>
/// Turns exceptions into problem details. Client mistakes the framework detects (malformed JSON,
/// wrong types, bad query values, bodies too large) become 4xx with a reason; anything else is a
/// 500 whose body says nothing about the exception, which goes to the log only.
/// </summary>
internal sealed partial class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ProblemDetails problem;
        switch (exception)
        {
            case BadHttpRequestException bad:
                problem = new ProblemDetails
                {
                    Status = bad.StatusCode,
                    Title = bad.StatusCode switch
                    {
                        StatusCodes.Status413PayloadTooLarge => "Request body too large",
                        StatusCodes.Status415UnsupportedMediaType => "Unsupported media type",
                        _ => "Bad request",
                    },
                    Detail = DescribeBadRequest(bad),
                };
                break;
            case JsonException json:
                problem = new ProblemDetails { Status = 400, Title = "Bad request", Detail = DescribeJson(json) };
                break;
            case TemporarilyUnavailableException busy:
                httpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(busy.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                problem = new ProblemDetails { Status = 503, Title = "Temporarily unavailable", Detail = busy.Message };
                break;
            case Fundament.Core.Quotas.QuotaExceededException quota:
                problem = new ProblemDetails
                {
                    Status = quota.Status,
                    Title = "Quota exceeded",
                    Type = "https://fundament.dev/problems/quota-exceeded",
                    Detail = quota.Message,
                    Extensions =
                    {
                        ["quota"] = quota.Quota,
                        ["limit"] = quota.Limit,
                        ["used"] = quota.Used,
                        ["requested"] = quota.Requested,
                        ["source"] = quota.LimitSource,
                    },
                };
                break;
            case RequestLimitExceededException limit:
                problem = Problems.LimitProblem(limit.Limit, limit.Max, limit.Message, limit.Status);
                break;
            case OperationCanceledException when httpContext.RequestAborted.IsCancellationRequested:
                // The client went away; nobody reads this answer.
                httpContext.Response.StatusCode = 499;
                return true;
            default:
                if (exception is CryptographicException)
                {
                    LogCryptoFailure(logger, httpContext.Request.Method, httpContext.Request.Path, exception);
                }
                else
                {
                    LogUnhandled(logger, httpContext.Request.Method, httpContext.Request.Path, exception);
                }
                problem = new ProblemDetails
                {
                    Status = 500,
                    Title = "Internal server error",
                    Detail = "The server failed to process the request. The error has been logged.",
                };
                break;
        }

        httpContext.Response.StatusCode = problem.Status!.Value;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }

    private static string DescribeBadRequest(BadHttpRequestException bad)
    {
        for (Exception? inner = bad.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is JsonException json)
            {
                return DescribeJson(json);
            }
        }
        // Framework messages name the parameter and the expected form, never request content.
        return bad.Message;
    }

    private static string DescribeJson(JsonException json)
    {
        // Position and path help the caller; the exception text itself may echo input, so it is not used.
        var where = json.Path is { Length: > 0 } path ? $" at '{path}'" : string.Empty;
        var line = json.LineNumber is { } l ? $" (line {l + 1}, byte {json.BytePositionInLine + 1})" : string.Empty;
        return json.InnerException is null && json.Message.Contains("could not be mapped", StringComparison.Ordinal)
            ? $"The request body has a property this endpoint does not accept{where}."
            : $"The request body is not valid JSON for this endpoint{where}{line}.";
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception for {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Decryption failed for {Method} {Path}: stored ciphertext did not authenticate")]
    private static partial void LogCryptoFailure(ILogger logger, string method, string path, Exception exception);
}

/// <summary>Something the request needs is busy for a while; answered 503 with <c>Retry-After</c>, nothing changed.</summary>
public sealed class TemporarilyUnavailableException(string message, TimeSpan retryAfter) : Exception(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>
/// A request larger in shape than the server accepts (too many parts, a field too long, a page too
/// big): answered 413 (or the given status) with a problem naming the limit, before anything is written.
/// </summary>
public sealed class RequestLimitExceededException(string limit, long max, string message, int status = StatusCodes.Status413PayloadTooLarge) : Exception(message)
{
    public string Limit { get; } = limit;

    public long Max { get; } = max;

    public int Status { get; } = status;
}
