using Dapper;
using Microsoft.Extensions.Hosting;

namespace Fundament.Media;

/// <summary>Lifecycle policies (table <c>media_policies</c>): by type and tag, archive after N days, trash after M days.</summary>
internal sealed class LifecyclePolicyStore(IDatabase database, TimeProvider time)
{
    private const string Columns = "id AS Id, name AS Name, kind AS Kind, tag AS Tag, archive_after_days AS ArchiveAfterDays, trash_after_days AS TrashAfterDays, enabled AS Enabled, created_at AS CreatedAt, updated_at AS UpdatedAt";

    public async Task<IReadOnlyList<PolicyResponse>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<PolicyRow>(new CommandDefinition($"SELECT {Columns} FROM media_policies ORDER BY name, id", cancellationToken: cancellationToken)))
            .Select(r => r.ToResponse()).ToList();
    }

    /// <summary>
    /// One page of policies by name (then id, which makes the key unique), after the cursor
    /// <c>"&lt;id&gt; &lt;name&gt;"</c> of <see cref="Cursor"/>; at most <paramref name="take"/> rows.
    /// </summary>
    public async Task<IReadOnlyList<PolicyResponse>> PageAsync(string? after, int take, CancellationToken cancellationToken)
    {
        var cursor = after is null ? null : Paging.Split(after, 2);
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<PolicyRow>(new CommandDefinition($"""
            SELECT {Columns} FROM media_policies
            WHERE (@afterName IS NULL OR (name, id) > (@afterName, @afterId))
            ORDER BY name, id LIMIT @take
            """, new { afterId = cursor?[0], afterName = cursor?[1], take }, cancellationToken: cancellationToken)))
            .Select(r => r.ToResponse()).ToList();
    }

    /// <summary>The paging cursor of <paramref name="policy"/>: its id, then its name (which may hold spaces).</summary>
    public static string Cursor(PolicyResponse policy) => Paging.Compose(policy.Id, policy.Name);

    public async Task<PolicyResponse?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QuerySingleOrDefaultAsync<PolicyRow>(new CommandDefinition($"SELECT {Columns} FROM media_policies WHERE id = @id", new { id }, cancellationToken: cancellationToken)))?.ToResponse();
    }

    public async Task<PolicyResponse> SaveAsync(string? id, PolicyRequest request, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        var args = new { id = id ?? Guid.CreateVersion7().ToString(), request.Name, kind = request.Type, tag = request.Tag?.Trim().ToLowerInvariant(), request.ArchiveAfterDays, request.TrashAfterDays, enabled = request.Enabled ?? true, now };
        if (id is null)
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO media_policies (id, name, kind, tag, archive_after_days, trash_after_days, enabled, created_at, updated_at)
                VALUES (@id, @Name, @kind, @tag, @ArchiveAfterDays, @TrashAfterDays, @enabled, @now, @now)
                """, args, cancellationToken: cancellationToken));
        }
        else
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE media_policies SET name = @Name, kind = @kind, tag = @tag, archive_after_days = @ArchiveAfterDays, trash_after_days = @TrashAfterDays, enabled = @enabled, updated_at = @now
                WHERE id = @id
                """, args, cancellationToken: cancellationToken));
        }
        return (await GetAsync(args.id, cancellationToken))!;
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_policies WHERE id = @id", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    private sealed class PolicyRow
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public string? Kind { get; set; }
        public string? Tag { get; set; }
        public long? ArchiveAfterDays { get; set; }
        public long? TrashAfterDays { get; set; }
        public bool Enabled { get; set; }
        public long CreatedAt { get; set; }
        public long UpdatedAt { get; set; }

        public PolicyResponse ToResponse() => new(Id, Name, Kind, Tag, (int?)ArchiveAfterDays, (int?)TrashAfterDays, Enabled,
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt));
    }
}

/// <summary>
/// Applies the policies, purges the trash after its retention, and sweeps temporary files. One
/// replica at a time (a lease), every <see cref="MediaOptions.PolicyInterval"/>. Age is counted from
/// upload. Assets under legal hold are never archived, trashed or purged.
/// </summary>
internal sealed partial class LifecyclePolicyRunner(
    LifecyclePolicyStore policies, MediaStore store, MediaService media, LeaseStore leases, TimeProvider time,
    IOptions<MediaOptions> options, ILogger<LifecyclePolicyRunner> logger) : BackgroundService
{
    private const int Batch = 500;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken) =>
        await Task.WhenAll(PoliciesLoopAsync(stoppingToken), PendingEventsLoopAsync(stoppingToken));

    /// <summary>Every 30 s, one worker (a lease) sends events a crash left pending.</summary>
    private async Task PendingEventsLoopAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(30));
        do
        {
            try
            {
                if (await leases.TryAcquireAsync("media-events", TimeSpan.FromMinutes(2), stoppingToken))
                {
                    await media.PublishPendingAsync(TimeSpan.FromMinutes(1), stoppingToken);
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogRunFailed(logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task PoliciesLoopAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PolicyInterval);
        do
        {
            try
            {
                if (await leases.TryAcquireAsync("media-policies", options.Value.PolicyInterval * 2, stoppingToken))
                {
                    await RunAsync(dryRun: false, stoppingToken);
                    // Temporary files of writes cut short by a crash: never read, swept once surely abandoned.
                    foreach (var local in new[] { media.Stores.Hot, media.Stores.Cold }.OfType<Storage.LocalBlobStore>())
                    {
                        local.SweepTemporaryFiles(TimeSpan.FromHours(1));
                    }
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogRunFailed(logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One run over every enabled policy and the trash; with <paramref name="dryRun"/> nothing changes.</summary>
    public async Task<PolicyRunResponse> RunAsync(bool dryRun, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var actions = new List<PolicyAction>();
        foreach (var policy in (await policies.ListAsync(cancellationToken)).Where(p => p.Enabled))
        {
            if (policy.TrashAfterDays is { } trashDays)
            {
                var before = (now - TimeSpan.FromDays(trashDays)).ToUnixTimeMilliseconds();
                foreach (var state in new[] { MediaState.Ready, MediaState.Archived, MediaState.Failed })
                {
                    foreach (var asset in await store.PolicyCandidatesAsync(state, before, policy.Type, policy.Tag, Batch, cancellationToken))
                    {
                        if (dryRun || await media.TrashAsync(asset, $"policy:{policy.Id}", $"policy {policy.Name}: older than {trashDays} days", cancellationToken) == LifecycleResult.Done)
                        {
                            actions.Add(new PolicyAction(policy.Id, asset.Id, "trash", asset.State, MediaState.Trashed));
                        }
                    }
                }
            }
            if (policy.ArchiveAfterDays is { } archiveDays)
            {
                var before = (now - TimeSpan.FromDays(archiveDays)).ToUnixTimeMilliseconds();
                foreach (var asset in await store.PolicyCandidatesAsync(MediaState.Ready, before, policy.Type, policy.Tag, Batch, cancellationToken))
                {
                    if (actions.Any(a => a.AssetId == asset.Id))
                    {
                        continue;
                    }
                    // Queued: workers copy the originals in parallel, each retried on its own.
                    if (dryRun || await media.RequestMoveAsync(asset, Storage.MediaTier.Cold, $"policy:{policy.Id}", $"policy {policy.Name}: older than {archiveDays} days", cancellationToken, reviveDead: false) == LifecycleResult.Accepted)
                    {
                        actions.Add(new PolicyAction(policy.Id, asset.Id, "archive", asset.State, MediaState.Archived));
                    }
                }
            }
        }
        var trashBefore = (now - options.Value.TrashRetention).ToUnixTimeMilliseconds();
        foreach (var asset in await store.TrashExpiredAsync(trashBefore, Batch, cancellationToken))
        {
            try
            {
                if (dryRun || await media.PurgeAsync(asset, "system", cancellationToken) == LifecycleResult.Done)
                {
                    actions.Add(new PolicyAction("trash-retention", asset.Id, "purge", MediaState.Trashed, "purged"));
                }
            }
            catch (Fundament.Core.Http.TemporarilyUnavailableException)
            {
                // Its content is busy with another change: the next run purges it; the others go on now.
            }
        }
        if (!dryRun && actions.Count > 0)
        {
            LogApplied(logger, actions.Count);
        }
        return new PolicyRunResponse(dryRun, actions);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Media policy run failed")]
    private static partial void LogRunFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Media policies applied {Count} actions")]
    private static partial void LogApplied(ILogger logger, int count);
}

internal static class LifecyclePoliciesApi
{
    public static RouteGroupBuilder MapLifecyclePoliciesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/media/policies").WithTags("Media policies").RequireAuthorization(MediaPermissions.Admin);
        group.MapGet("", ListAsync).WithName("ListMediaPolicies")
            .WithSummary("Lifecycle policies by name, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapPost("", CreateAsync).WithName("CreateMediaPolicy").WithSummary("Adds a policy: by type and tag, archive after N days and/or trash after M days.");
        group.MapPost("/run", RunAsync).WithName("RunMediaPolicies").WithSummary("Applies the policies now; with dryRun=true (default) only lists what they would do.");
        group.MapGet("/{id}", GetAsync).WithName("GetMediaPolicy").WithSummary("Get a media lifecycle policy");
        group.MapPut("/{id}", UpdateAsync).WithName("UpdateMediaPolicy").WithSummary("Replace a media lifecycle policy");
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteMediaPolicy").WithSummary("Delete a media lifecycle policy");
        return group;
    }

    private static async Task<Results<Ok<IReadOnlyList<PolicyResponse>>, ValidationProblem>> ListAsync(
        int? limit, string? after, LifecyclePolicyStore store, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(Paging.Page(context, await store.PageAsync(after, Paging.Take(size), cancellationToken), size, LifecyclePolicyStore.Cursor));
    }

    private static ValidationProblem? Validate(PolicyRequest request)
    {
        var errors = new ValidationErrors().Required("name", request.Name).MaxLength("name", request.Name, 100).MaxLength("tag", request.Tag, MediaApi.MaxTagLength);
        if (request.Type is not null && !MediaKind.All.Contains(request.Type))
        {
            errors.Add("type", "type must be image, video, audio or document.");
        }
        if (request.ArchiveAfterDays is null && request.TrashAfterDays is null)
        {
            errors.Add("archiveAfterDays", "A policy needs archiveAfterDays, trashAfterDays or both.");
        }
        if (request.ArchiveAfterDays is < 0 or > 36500 || request.TrashAfterDays is < 0 or > 36500)
        {
            errors.Add("archiveAfterDays", "Days are between 0 and 36500.");
        }
        if (request.ArchiveAfterDays is { } a && request.TrashAfterDays is { } t && t <= a)
        {
            errors.Add("trashAfterDays", "trashAfterDays must be after archiveAfterDays.");
        }
        return errors.Any ? errors.ToProblem() : null;
    }

    private static async Task<Results<Created<PolicyResponse>, ValidationProblem>> CreateAsync(
        PolicyRequest request, Fundament.Core.Storage.IDatabase database, LifecyclePolicyStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (Validate(request) is { } invalid)
        {
            return invalid;
        }
        var policy = await database.AuditedAsync(audit, () => store.SaveAsync(null, request, cancellationToken),
            policy => new AuditEvent("media.policy.create", AuditOutcome.Success) { Target = $"media-policy:{policy.Id}" }.From(context), cancellationToken);
        return TypedResults.Created($"/api/v1/media/policies/{policy.Id}", policy);
    }

    private static async Task<Results<Ok<PolicyResponse>, ProblemHttpResult>> GetAsync(string id, LifecyclePolicyStore store, CancellationToken cancellationToken) =>
        await store.GetAsync(id, cancellationToken) is { } policy ? TypedResults.Ok(policy) : Problems.NotFound("The policy");

    private static async Task<Results<Ok<PolicyResponse>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        string id, PolicyRequest request, Fundament.Core.Storage.IDatabase database, LifecyclePolicyStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (Validate(request) is { } invalid)
        {
            return invalid;
        }
        if (await store.GetAsync(id, cancellationToken) is null)
        {
            return Problems.NotFound("The policy");
        }
        var policy = await database.AuditedAsync(audit, () => store.SaveAsync(id, request, cancellationToken),
            _ => new AuditEvent("media.policy.update", AuditOutcome.Success) { Target = $"media-policy:{id}" }.From(context), cancellationToken);
        return TypedResults.Ok(policy);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, Fundament.Core.Storage.IDatabase database, LifecyclePolicyStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (!await database.AuditedAsync(audit, () => store.DeleteAsync(id, cancellationToken),
                deleted => deleted ? new AuditEvent("media.policy.delete", AuditOutcome.Success) { Target = $"media-policy:{id}" }.From(context) : null, cancellationToken))
        {
            return Problems.NotFound("The policy");
        }
        return TypedResults.NoContent();
    }

    private static async Task<Ok<PolicyRunResponse>> RunAsync(bool? dryRun, LifecyclePolicyRunner runner, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var result = await runner.RunAsync(dryRun ?? true, cancellationToken);
        if (!result.DryRun)
        {
            await audit.AppendAsync(new AuditEvent("media.policy.run", AuditOutcome.Success)
            {
                Details = new Dictionary<string, string> { ["actions"] = result.Actions.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            }.From(context), cancellationToken);
        }
        return TypedResults.Ok(result);
    }
}
