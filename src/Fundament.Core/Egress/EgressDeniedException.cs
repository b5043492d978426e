namespace Fundament.Core.Egress;

/// <summary>
/// A connection the egress policy refused. Thrown from a connect callback, so an
/// <see cref="HttpClient"/> reports it as an <see cref="HttpRequestException"/> with this inside.
/// The message names the target and the rule, never a credential.
/// </summary>
public sealed class EgressDeniedException(string message) : IOException(message)
{
    /// <summary>True when <paramref name="exception"/> or one of its inner exceptions is an egress refusal.</summary>
    public static bool IsDenial(Exception? exception, out EgressDeniedException? denial)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is EgressDeniedException found)
            {
                denial = found;
                return true;
            }
        }
        denial = null;
        return false;
    }
}
