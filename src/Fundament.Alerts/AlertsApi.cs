using System.Net.Mail;
using System.Text.RegularExpressions;
using Fundament.Core.Egress;
using Fundament.Delivery;

namespace Fundament.Alerts;

internal static partial class AlertsApi
{
    public static RouteGroupBuilder MapAlertsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/alerts").WithTags("Alerts");
        group.MapGet("", ListAsync).RequireAuthorization(AlertPermissions.Read).WithName("ListAlerts").WithSummary("Alerts, newest first; state=pending|firing|resolved.");
        group.MapGet("/rules", RulesAsync).RequireAuthorization(AlertPermissions.Read).WithName("ListAlertRules")
            .WithSummary("Rules, built-in and custom, by id, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapPost("/rules", CreateRuleAsync).RequireAuthorization(AlertPermissions.Write).WithName("CreateAlertRule").WithSummary("Create an alert rule");
        group.MapPut("/rules/{id}", UpdateRuleAsync).RequireAuthorization(AlertPermissions.Write).WithName("UpdateAlertRule")
            .WithSummary("Adjusts a rule (built-in ones too): enabled, for, severity, name, service.");
        group.MapDelete("/rules/{id}", DeleteRuleAsync).RequireAuthorization(AlertPermissions.Write).WithName("DeleteAlertRule").WithSummary("Delete an alert rule");
        group.MapGet("/channels", ChannelsAsync).RequireAuthorization(AlertPermissions.Read).WithName("ListAlertChannels")
            .WithSummary("Channels by name, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapPost("/channels", CreateChannelAsync).RequireAuthorization(AlertPermissions.Write).WithName("CreateAlertChannel")
            .WithSummary("Adds a webhook (HMAC-signed), Slack or email channel; a webhook's secret is shown only in this answer.");
        group.MapDelete("/channels/{id}", DeleteChannelAsync).RequireAuthorization(AlertPermissions.Write).WithName("DeleteAlertChannel").WithSummary("Delete an alert channel");
        group.MapPost("/channels/{id}/test", TestChannelAsync).RequireAuthorization(AlertPermissions.Write).WithName("TestAlertChannel")
            .WithSummary("Queues a test notification to the channel; see /api/v1/deliveries for how it went.");
        return group;
    }

    [GeneratedRegex("^(critical|warning|info)$")]
    private static partial Regex SeverityPattern();

    private static async Task<Results<Ok<IReadOnlyList<AlertResponse>>, ValidationProblem>> ListAsync(string? state, int? limit, AlertStore store, CancellationToken cancellationToken)
    {
        if (state is not (null or AlertState.Pending or AlertState.Firing or AlertState.Resolved))
        {
            return Problems.Validation("state", "state must be pending, firing or resolved.");
        }
        if (limit is < 1 or > 1000)
        {
            return Problems.Validation("limit", "limit must be between 1 and 1000.");
        }
        return TypedResults.Ok<IReadOnlyList<AlertResponse>>((await store.AlertsAsync(state, limit ?? 100, cancellationToken)).Select(a => a.ToResponse()).ToList());
    }

    private static async Task<Results<Ok<IReadOnlyList<AlertRuleResponse>>, ValidationProblem>> RulesAsync(
        int? limit, string? after, AlertStore store, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var rows = await store.RulesAsync(after, Paging.Take(size), cancellationToken);
        return TypedResults.Ok<IReadOnlyList<AlertRuleResponse>>(Paging.Page(context, rows, size, r => r.Id).Select(r => r.ToResponse()).ToList());
    }

    private static async Task<Results<Created<AlertRuleResponse>, ValidationProblem>> CreateRuleAsync(
        AlertRuleRequest request, IDatabase database, AlertStore store, AlertConditions conditions, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("name", request.Name).MaxLength("name", request.Name, 200);
        if (!conditions.IsKnown(request.Kind))
        {
            errors.Add("kind", "kind must be one of: " + string.Join(", ", conditions.Kinds.Select(k => k.Kind)) + ".");
        }
        var forDuration = ValidateRule(request, errors);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var rule = await database.AuditedAsync(audit,
            () => store.CreateRuleAsync(request.Kind!, request.Name!, request.Enabled ?? true, forDuration ?? TimeSpan.Zero, request.Severity ?? "warning", request.Service, cancellationToken),
            rule => new AuditEvent("alert_rule.create", AuditOutcome.Success) { Target = $"alert_rule:{rule.Id}" }.From(context), cancellationToken);
        return TypedResults.Created($"/api/v1/alerts/rules/{rule.Id}", rule.ToResponse());
    }

    private static async Task<Results<Ok<AlertRuleResponse>, ValidationProblem, ProblemHttpResult>> UpdateRuleAsync(
        string id, AlertRuleRequest request, IDatabase database, AlertStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().MaxLength("name", request.Name, 200);
        if (request.Kind is not null)
        {
            errors.Add("kind", "a rule's kind cannot change; create another rule.");
        }
        var forDuration = ValidateRule(request, errors);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (!await database.AuditedAsync(audit,
                () => store.UpdateRuleAsync(id, request.Name, request.Enabled, forDuration, request.Severity, request.Service, cancellationToken),
                updated => updated ? new AuditEvent("alert_rule.update", AuditOutcome.Success) { Target = $"alert_rule:{id}" }.From(context) : null, cancellationToken))
        {
            return Problems.NotFound("The rule");
        }
        return TypedResults.Ok((await store.RulesAsync(cancellationToken)).Single(r => r.Id == id).ToResponse());
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteRuleAsync(
        string id, IDatabase database, AlertStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (!await database.AuditedAsync(audit, () => store.DeleteRuleAsync(id, cancellationToken),
                deleted => deleted ? new AuditEvent("alert_rule.delete", AuditOutcome.Success) { Target = $"alert_rule:{id}" }.From(context) : null, cancellationToken))
        {
            return Problems.NotFound("A custom rule with this id");
        }
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<IReadOnlyList<AlertChannelResponse>>, ValidationProblem>> ChannelsAsync(
        int? limit, string? after, AlertStore store, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var rows = await store.ChannelsAsync(after, Paging.Take(size), cancellationToken);
        return TypedResults.Ok<IReadOnlyList<AlertChannelResponse>>(Paging.Page(context, rows, size, c => c.Name).Select(c => c.ToResponse()).ToList());
    }

    private static async Task<Results<Created<CreatedChannelResponse>, ValidationProblem, ProblemHttpResult>> CreateChannelAsync(
        AlertChannelRequest request, IDatabase database, AlertStore store, EgressGuard egress, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("name", request.Name).MaxLength("name", request.Name, 100);
        if (!DeliveryKind.IsValid(request.Kind))
        {
            errors.Add("kind", "kind must be webhook, slack or email.");
        }
        else if (request.Kind == DeliveryKind.Email)
        {
            if (request.Target is null || request.Target.Length > 254 || !MailAddress.TryCreate(request.Target, out _))
            {
                errors.Add("target", "target must be an email address.");
            }
        }
        else if (!Uri.TryCreate(request.Target, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || request.Target!.Length > 2000 || url.UserInfo.Length > 0)
        {
            errors.Add("target", "target must be an http or https URL without credentials.");
        }
        else if (egress.CheckTarget(EgressPurpose.AlertChannels, url.Host, url.Port) is { Allowed: false } refused)
        {
            errors.Add("target", $"target is not allowed: {refused.Reason}.");
            await audit.AppendAsync(new AuditEvent("alert_channel.create", AuditOutcome.Denied)
            {
                Details = new Dictionary<string, string> { ["reason"] = "egress", ["host"] = $"{url.Host}:{url.Port}" },
            }.From(context), cancellationToken);
        }
        if (request.Secret is not null && (request.Kind != DeliveryKind.Webhook || request.Secret.Length is < 16 or > 256))
        {
            errors.Add("secret", "secret applies to webhooks and must be 16-256 characters.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var secret = request.Kind == DeliveryKind.Webhook ? request.Secret ?? Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) : null;
        var channel = await database.AuditedAsync(audit, () => store.CreateChannelAsync(request.Name!, request.Kind!, request.Target!, secret, cancellationToken),
            channel => channel is null ? null : new AuditEvent("alert_channel.create", AuditOutcome.Success)
            {
                Target = $"alert_channel:{channel.Id}",
                Details = new Dictionary<string, string> { ["kind"] = channel.Kind, ["target"] = channel.Target },  // already masked for Slack
            }.From(context), cancellationToken);
        if (channel is null)
        {
            return Problems.Conflict("A channel with this name already exists.");
        }
        return TypedResults.Created($"/api/v1/alerts/channels/{channel.Id}", new CreatedChannelResponse(channel, request.Secret is null ? secret : null));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteChannelAsync(
        string id, IDatabase database, AlertStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (!await database.AuditedAsync(audit, () => store.DeleteChannelAsync(id, cancellationToken),
                deleted => deleted ? new AuditEvent("alert_channel.delete", AuditOutcome.Success) { Target = $"alert_channel:{id}" }.From(context) : null, cancellationToken))
        {
            return Problems.NotFound("The channel");
        }
        return TypedResults.NoContent();
    }

    private static async Task<Results<Accepted<TestDeliveryResponse>, ProblemHttpResult>> TestChannelAsync(
        string id, AlertStore store, IDeliveryQueue deliveries, TimeProvider time, CancellationToken cancellationToken)
    {
        var channel = (await store.ChannelsAsync(cancellationToken)).FirstOrDefault(c => c.Id == id);
        if (channel is null)
        {
            return Problems.NotFound("The channel");
        }
        var text = $"Test notification from Fundament at {time.GetUtcNow():u}.";
        var payload = channel.Kind == DeliveryKind.Webhook
            ? System.Text.Json.JsonSerializer.Serialize(new { @event = "alert.test", message = text }, System.Text.Json.JsonSerializerOptions.Web)
            : text;
        var deliveryId = await deliveries.EnqueueAsync(new DeliveryRequest(channel.Kind, channel.Target, "alert.test", payload, "[Fundament] test", store.SecretOf(channel), $"channel:{id}"), cancellationToken);
        return TypedResults.Accepted($"/api/v1/deliveries/{deliveryId}", new TestDeliveryResponse(deliveryId));
    }

    private static TimeSpan? ValidateRule(AlertRuleRequest request, ValidationErrors errors)
    {
        TimeSpan? forDuration = null;
        if (request.For is not null)
        {
            if (!Durations.TryParse(request.For, out var value) || value > TimeSpan.FromDays(7))
            {
                errors.Add("for", "for must be a duration up to 7d, such as 30s or 5m.");
            }
            forDuration = value;
        }
        if (request.Severity is not null && !SeverityPattern().IsMatch(request.Severity))
        {
            errors.Add("severity", "severity must be critical, warning or info.");
        }
        errors.MaxLength("service", request.Service, 63);
        return forDuration;
    }
}

public sealed record TestDeliveryResponse(string DeliveryId);
