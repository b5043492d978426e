namespace Fundament.Messaging.Transport;

/// <summary>
/// A transport could not do what was asked: the broker is unreachable or did not confirm in time
/// (503), or refused for a full queue (429). Nothing was acknowledged to the caller; a retry is safe.
/// </summary>
internal sealed class TransportException(int status, string detail, Exception? inner = null) : Exception(detail, inner)
{
    public int Status { get; } = status;

    public static TransportException Unavailable(string detail, Exception? inner = null) => new(StatusCodes.Status503ServiceUnavailable, detail, inner);

    public static TransportException Full(string detail) => new(StatusCodes.Status429TooManyRequests, detail);
}

internal static class TransportProblems
{
    /// <summary>Answers a <see cref="TransportException"/> as a problem with <c>Retry-After</c>, for every endpoint of the group.</summary>
    public static RouteGroupBuilder WithTransportProblems(this RouteGroupBuilder group)
    {
        // In the API description too: a broker that is away (503) or a group's full queue (429), both with Retry-After.
        group.ProducesProblem(StatusCodes.Status503ServiceUnavailable).ProducesProblem(StatusCodes.Status429TooManyRequests);
        group.AddEndpointFilter(async (context, next) =>
        {
            try
            {
                return await next(context);
            }
            catch (TransportException ex)
            {
                context.HttpContext.Response.Headers.RetryAfter = "1";
                return TypedResults.Problem(statusCode: ex.Status, title: ex.Status == StatusCodes.Status429TooManyRequests ? "Too Many Requests" : "Service Unavailable", detail: ex.Message);
            }
        });
        return group;
    }
}
