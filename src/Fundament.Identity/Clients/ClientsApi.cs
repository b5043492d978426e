using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Fundament.Identity.Authentication;
using Fundament.Identity.Roles;

namespace Fundament.Identity.Clients;

internal static partial class ClientsApi
{
    public static RouteGroupBuilder MapClientsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/clients").WithTags("Clients");
        group.MapPost("", CreateAsync).RequireAuthorization(IdentityPermissions.ClientsWrite).WithName("CreateClient")
            .WithSummary("Creates a service client; the answer holds client_secret, shown only this once.");
        group.MapGet("", ListAsync).RequireAuthorization(IdentityPermissions.ClientsRead).WithName("ListClients")
            .WithSummary("Service clients by name, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapGet("/{id}", GetAsync).RequireAuthorization(IdentityPermissions.ClientsRead).WithName("GetClient").WithSummary("Get a service client");
        group.MapPatch("/{id}", UpdateAsync).RequireAuthorization(IdentityPermissions.ClientsWrite).WithName("UpdateClient").WithSummary("Change a service client");
        group.MapPost("/{id}/rotate-secret", RotateAsync).RequireAuthorization(IdentityPermissions.ClientsWrite).WithName("RotateClientSecret")
            .WithSummary("Replaces the client's secret; the old one stops working at once.");
        group.MapDelete("/{id}", DeleteAsync).RequireAuthorization(IdentityPermissions.ClientsWrite).WithName("DeleteClient").WithSummary("Delete a service client");
        return group;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")]
    private static partial Regex NamePattern();

    private static async Task<Results<Created<CreatedClientResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateClientRequest request, IDatabase database, ClientStore clients, RoleGuard guard, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("name", request.Name);
        if (request.Name is { Length: > 0 } n && !NamePattern().IsMatch(n))
        {
            errors.Add("name", "name must be 2-64 characters of letters, digits, '.', '_' and '-'.");
        }
        if (request.Roles is { Count: > 50 })
        {
            errors.Add("roles", "At most 50 roles.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var roles = request.Roles ?? [];
        var check = await guard.CheckAssignableAsync(context.User, roles, cancellationToken);
        if (!check.Allowed)
        {
            return check.IsForbidden ? check.Forbidden() : Problems.Validation("roles", check.Message!);
        }
        var created = await database.InUnitOfWorkAsync(async () =>
        {
            var created = await clients.CreateAsync(request.Name!, roles, context.User.ActorId(), cancellationToken);
            if (created is { } made)
            {
                await audit.AppendAsync(new AuditEvent("client.create", AuditOutcome.Success)
                {
                    Target = $"client:{made.Client.ClientId}",
                    Details = new Dictionary<string, string> { ["name"] = made.Client.Name, ["roles"] = string.Join(",", roles) },
                }.From(context), cancellationToken);
            }
            return created;
        }, cancellationToken);
        if (created is not { } c)
        {
            return Problems.Conflict("A client with this name already exists.");
        }
        return TypedResults.Created($"/api/v1/clients/{c.Client.ClientId}", new CreatedClientResponse(c.Client.ClientId, c.Secret, c.Client.Name, c.Client.Roles));
    }

    private static async Task<Results<Ok<IReadOnlyList<ClientResponse>>, ValidationProblem>> ListAsync(
        int? limit, string? after, ClientStore clients, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(Paging.Page(context, await clients.ListAsync(after, Paging.Take(size), cancellationToken), size, ClientStore.Cursor));
    }

    private static async Task<Results<Ok<ClientResponse>, ProblemHttpResult>> GetAsync(string id, ClientStore clients, CancellationToken cancellationToken) =>
        await clients.GetAsync(id, cancellationToken) is { } client ? TypedResults.Ok(client) : Problems.NotFound("The client");

    /// <summary>What the client endpoints that change something need besides the request.</summary>
    internal sealed record ClientServices(IDatabase Database, ClientStore Clients, RoleGuard Guard, PrincipalStatus Status, IAuditLog Audit);

    /// <summary>
    /// The client, when the caller may act on it: it must hold every permission the client holds,
    /// or rotating its secret would hand the caller the client's powers.
    /// </summary>
    private static async Task<(ClientResponse? Client, ProblemHttpResult? Problem)> ClientWithinReachAsync(
        string id, ClientServices s, HttpContext context, CancellationToken cancellationToken)
    {
        var client = await s.Clients.GetAsync(id, cancellationToken);
        if (client is null)
        {
            return (null, Problems.NotFound("The client"));
        }
        return await s.Guard.CheckSubjectAsync(context.User, $"client:{client.ClientId}", client.Roles, $"client '{client.Name}'", cancellationToken) is { Allowed: false } check
            ? (null, check.Forbidden())
            : (client, null);
    }

    private static async Task<Results<Ok<ClientResponse>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        string id, UpdateClientRequest request, [AsParameters] ClientServices s, HttpContext context, CancellationToken cancellationToken)
    {
        if (request.Roles is { Count: > 50 })
        {
            return Problems.Validation("roles", "At most 50 roles.");
        }
        var (client, problem) = await ClientWithinReachAsync(id, s, context, cancellationToken);
        if (client is null)
        {
            return problem!;
        }
        if (request.Roles is not null)
        {
            var check = await s.Guard.CheckAssignableAsync(context.User, request.Roles, cancellationToken);
            if (!check.Allowed)
            {
                return check.IsForbidden ? check.Forbidden() : Problems.Validation("roles", check.Message!);
            }
        }
        await s.Database.InUnitOfWorkAsync(async () =>
        {
            await s.Clients.UpdateAsync(id, request.Roles, request.Disabled, cancellationToken);
            s.Status.Invalidate();
            await s.Audit.AppendAsync(new AuditEvent("client.update", AuditOutcome.Success)
            {
                Target = $"client:{id}",
                Details = new Dictionary<string, string>
                {
                    ["roles"] = request.Roles is null ? "(unchanged)" : string.Join(",", request.Roles),
                    ["disabled"] = request.Disabled?.ToString() ?? "(unchanged)",
                },
            }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.Ok((await s.Clients.GetAsync(id, cancellationToken))!);
    }

    private static async Task<Results<Ok<CreatedClientResponse>, ProblemHttpResult>> RotateAsync(
        string id, [AsParameters] ClientServices s, HttpContext context, CancellationToken cancellationToken)
    {
        var (client, problem) = await ClientWithinReachAsync(id, s, context, cancellationToken);
        if (client is null)
        {
            return problem!;
        }
        var secret = await s.Database.InUnitOfWorkAsync(async () =>
        {
            var secret = await s.Clients.RotateSecretAsync(id, cancellationToken);
            if (secret is not null)
            {
                // Tokens minted with the old secret end here now, on other replicas within PrincipalStatus.CacheFor.
                s.Status.Invalidate();
                await s.Audit.AppendAsync(new AuditEvent("client.rotate_secret", AuditOutcome.Success) { Target = $"client:{id}" }.From(context), cancellationToken);
            }
            return secret;
        }, cancellationToken);
        return secret is null
            ? Problems.NotFound("The client")
            : TypedResults.Ok(new CreatedClientResponse(client.ClientId, secret, client.Name, client.Roles));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, [AsParameters] ClientServices s, HttpContext context, CancellationToken cancellationToken)
    {
        var (client, problem) = await ClientWithinReachAsync(id, s, context, cancellationToken);
        if (client is null)
        {
            return problem!;
        }
        var deleted = await s.Database.InUnitOfWorkAsync(async () =>
        {
            if (!await s.Clients.DeleteAsync(id, cancellationToken))
            {
                return false;
            }
            s.Status.Invalidate();
            await s.Audit.AppendAsync(new AuditEvent("client.delete", AuditOutcome.Success) { Target = $"client:{id}" }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        return deleted ? TypedResults.NoContent() : Problems.NotFound("The client");
    }
}

/// <summary>Body of <c>POST /api/v1/clients</c>.</summary>
/// <param name="Name">Required, unique: 2-64 of letters, digits, '.', '_', '-'.</param>
/// <param name="Roles">Optional roles for the client's tokens; default none.</param>
public sealed record CreateClientRequest(string? Name, IReadOnlyList<string>? Roles);

/// <summary>Body of <c>PATCH /api/v1/clients/{id}</c>; left-out fields are unchanged.</summary>
public sealed record UpdateClientRequest(IReadOnlyList<string>? Roles, bool? Disabled);

/// <summary>The only time a client secret is shown.</summary>
public sealed record CreatedClientResponse(
    [property: JsonPropertyName("client_id")] string ClientId,
    [property: JsonPropertyName("client_secret")] string ClientSecret,
    string Name,
    IReadOnlyList<string> Roles);
