using System.Net.Http.Headers;
using System.Text;
using Fundament.Identity.Clients;
using Fundament.Identity.Login;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Net.Http.Headers;

namespace Fundament.Identity.Tokens;

/// <summary>
/// The OAuth 2.0 token endpoint for services (RFC 6749 section 4.4, client credentials). Client
/// authentication by HTTP Basic or form fields. Errors carry the RFC's <c>error</c> code inside a
/// problem-details body, so both OAuth libraries and problem-details readers understand them.
/// </summary>
internal static class OAuthApi
{
    public static IEndpointConventionBuilder MapOAuthApi(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapPost("/oauth2/token", TokenAsync)
            .WithTags("Authentication")
            .WithName("OAuthToken")
            .WithSummary("client_credentials grant: form-encoded grant_type, client_id and client_secret (or HTTP Basic).")
            .Accepts<IFormCollection>("application/x-www-form-urlencoded")
            .Produces<TokenResponse>()
            .ProducesProblem(400)
            .ProducesProblem(401)
            .AllowAnonymous();

    private static async Task<IResult> TokenAsync(HttpContext context, ClientStore clients, TokenIssuer issuer, IAuditLog audit, CancellationToken cancellationToken)
    {
        context.Response.Headers.CacheControl = "no-store";
        if (!context.Request.HasFormContentType)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_request", "The body must be application/x-www-form-urlencoded.");
        }
        var form = await context.Request.ReadFormAsync(cancellationToken);
        var grantType = form["grant_type"].ToString();
        if (string.IsNullOrEmpty(grantType))
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_request", "grant_type is required.");
        }
        if (grantType != "client_credentials")
        {
            return Error(StatusCodes.Status400BadRequest, "unsupported_grant_type", "Only client_credentials is supported here; people log in at /api/v1/auth/login.");
        }

        string? clientId = null;
        string? clientSecret = null;
        var usedBasic = false;
        var authorization = context.Request.Headers[HeaderNames.Authorization].ToString();
        if (AuthenticationHeaderValue.TryParse(authorization, out var header) && string.Equals(header.Scheme, "Basic", StringComparison.OrdinalIgnoreCase) && header.Parameter is { } parameter)
        {
            usedBasic = true;
            try
            {
                var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(parameter));
                var colon = decoded.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0)
                {
                    clientId = Uri.UnescapeDataString(decoded[..colon]);
                    clientSecret = Uri.UnescapeDataString(decoded[(colon + 1)..]);
                }
            }
            catch (FormatException)
            {
                // Falls through to invalid_client below.
            }
        }
        else
        {
            clientId = form["client_id"].ToString();
            clientSecret = form["client_secret"].ToString();
        }
        if (string.IsNullOrEmpty(clientId) || string.IsNullOrEmpty(clientSecret) || clientId.Length > 100 || clientSecret.Length > 200)
        {
            return InvalidClient(context, usedBasic);
        }

        var client = await clients.AuthenticateAsync(clientId, clientSecret, cancellationToken);
        var sourceIp = context.Connection.RemoteIpAddress?.ToString();
        if (client is null)
        {
            await audit.AppendAsync(new AuditEvent("auth.client_credentials", AuditOutcome.Failure) { Actor = $"client:{Truncate(clientId)}", SourceIp = sourceIp }, cancellationToken);
            return InvalidClient(context, usedBasic);
        }
        var (token, expiresIn) = issuer.Issue(new TokenSubject(client.ClientId, "client", client.Name, client.Roles, client.ClientId, null), "client_credentials");
        await audit.AppendAsync(new AuditEvent("auth.client_credentials", AuditOutcome.Success) { Actor = $"client:{client.ClientId}", ActorName = client.Name, SourceIp = sourceIp }, cancellationToken);
        return TypedResults.Ok(new TokenResponse(token, null, "Bearer", expiresIn));
    }

    private static IResult InvalidClient(HttpContext context, bool usedBasic)
    {
        if (usedBasic)
        {
            context.Response.Headers.WWWAuthenticate = "Basic realm=\"fundament\"";
        }
        return Error(StatusCodes.Status401Unauthorized, "invalid_client", "Client authentication failed.");
    }

    private static IResult Error(int status, string error, string description)
    {
        var problem = new ProblemDetails
        {
            Status = status,
            Title = status == 401 ? "Unauthorized" : "Bad request",
            Detail = description,
            Extensions = { ["error"] = error, ["error_description"] = description },
        };
        return TypedResults.Problem(problem);
    }

    private static string Truncate(string value) => value.Length > 64 ? value[..64] : value;
}
