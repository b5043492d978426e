namespace Fundament.Core.Http;

/// <summary>Problem-details answers used across modules.</summary>
public static class Problems
{
    public static ValidationProblem Validation(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] });

    public static ValidationProblem Validation(IDictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors);

    public static ProblemHttpResult NotFound(string what) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: $"{what} was not found.");

    public static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: detail);

    public static ProblemHttpResult Forbidden(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: detail);

    /// <summary>
    /// 403 for an action that would reach past the caller's own permissions; the problem names
    /// what is missing (<c>missingPermissions</c>), so the answer says which grant would change it.
    /// </summary>
    public static ProblemHttpResult MissingPermissions(string detail, IReadOnlyList<string> missing) =>
        TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: detail,
            extensions: new Dictionary<string, object?> { ["missingPermissions"] = missing });

    /// <summary>
    /// A request over one of the server's shape limits (parts, field length, page size); the problem
    /// names the limit (<c>limit</c>) and its value (<c>max</c>).
    /// </summary>
    public static ProblemHttpResult LimitExceeded(string limit, long max, string detail, int status = StatusCodes.Status413PayloadTooLarge) =>
        TypedResults.Problem(LimitProblem(limit, max, detail, status));

    internal static Microsoft.AspNetCore.Mvc.ProblemDetails LimitProblem(string limit, long max, string detail, int status) => new()
    {
        Status = status,
        Title = status == StatusCodes.Status413PayloadTooLarge ? "Request too large" : "Request over a limit",
        Type = "https://fundament.dev/problems/limit-exceeded",
        Detail = detail,
        Extensions = { ["limit"] = limit, ["max"] = max },
    };

    public static ProblemHttpResult Unauthorized(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized", detail: detail);
}

/// <summary>Collects field errors for one request.</summary>
public sealed class ValidationErrors
{
    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

    public bool Any => _errors.Count > 0;

    public ValidationErrors Add(string field, string message)
    {
        if (!_errors.TryGetValue(field, out var list))
        {
            _errors[field] = list = [];
        }
        list.Add(message);
        return this;
    }

    public ValidationErrors Required(string field, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            Add(field, $"{field} is required.");
        }
        return this;
    }

    public ValidationErrors MaxLength(string field, string? value, int max)
    {
        if (value is not null && value.Length > max)
        {
            Add(field, $"{field} must be at most {max} characters.");
        }
        return this;
    }

    public ValidationProblem ToProblem() =>
        TypedResults.ValidationProblem(_errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal));
}
