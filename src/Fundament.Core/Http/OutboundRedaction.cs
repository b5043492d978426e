namespace Fundament.Core.Http;

/// <summary>
/// Marks an outgoing request whose URL is itself a secret (a Slack incoming-webhook path, a
/// webhook URL with a token in it): tracing records only its scheme, host and port.
/// </summary>
public static class OutboundRedaction
{
    public static readonly HttpRequestOptionsKey<bool> SecretUrl = new("fundament.secret-url");

    public static void MarkSecretUrl(this HttpRequestMessage request) => request.Options.Set(SecretUrl, true);

    public static bool HasSecretUrl(this HttpRequestMessage request) => request.Options.TryGetValue(SecretUrl, out var secret) && secret;
}
