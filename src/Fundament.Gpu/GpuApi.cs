using System.Text.RegularExpressions;
using Fundament.Gpu.Placement;
using Fundament.Gpu.Providers;

namespace Fundament.Gpu;

internal static partial class GpuApi
{
    public static RouteGroupBuilder MapGpuApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/gpu").WithTags("GPU");
        group.MapGet("/offers", OffersAsync).RequireAuthorization(GpuPermissions.Read).WithName("ListGpuOffers")
            .WithSummary("Offers of every configured provider now, normalised (provider, region, GPU, count, VRAM in GB, $/h, spot, availability), the cheapest `limit` first; providers that could not answer are named.");
        group.MapPost("/pools", CreatePoolAsync).RequireAuthorization(GpuPermissions.Write).WithName("CreateGpuPool")
            .WithSummary("Creates a pool and shows its cost forecast from the offers now (dryRun=true: the forecast only).");
        group.MapGet("/pools", ListPoolsAsync).RequireAuthorization(GpuPermissions.Read).WithName("ListGpuPools").WithSummary("Pools by name, with a cursor (next).");
        group.MapGet("/pools/{name}", GetPoolAsync).RequireAuthorization(GpuPermissions.Read).WithName("GetGpuPool").WithSummary("One pool.");
        group.MapDelete("/pools/{name}", DeletePoolAsync).RequireAuthorization(GpuPermissions.Write).WithName("DeleteGpuPool").WithSummary("Deletes a pool (its decisions stay in the log).");
        group.MapPost("/pools/{name}/place", PlaceAsync).RequireAuthorization(GpuPermissions.Write).WithName("PlaceGpuWorker")
            .WithSummary("Launches one worker for the pool on the best fitting offer, failing over on refusals; 201 with the decision, or 409 with why nothing could be launched. Every placement is in the decision log.");
        group.MapPost("/pools/{name}/instances/{instanceId}/terminate", TerminateAsync).RequireAuthorization(GpuPermissions.Write).WithName("TerminateGpuWorker")
            .WithSummary("Terminates a worker the pool launched, at its provider; it no longer counts against the pool's max.");
        group.MapGet("/decisions", DecisionsAsync).RequireAuthorization(GpuPermissions.Read).WithName("ListGpuDecisions")
            .WithSummary("The decision log, newest first: each placement's chosen offer and every rejected one with its reason.");
        return group;
    }

    /// <summary>Every provider's offers; a provider that fails is reported, not fatal.</summary>
    private static async Task<(List<GpuOffer> Offers, List<ProviderError> Errors)> CollectAsync(GpuProviders providers, GpuConstraints constraints, CancellationToken cancellationToken)
    {
        var offers = new List<GpuOffer>();
        var errors = new List<ProviderError>();
        foreach (var (name, provider) in providers.All())
        {
            try
            {
                offers.AddRange(await provider.OffersAsync(constraints, cancellationToken));
            }
            catch (GpuLaunchException ex)
            {
                errors.Add(new ProviderError(name, ex.Failure.ToString().ToLowerInvariant(), ex.Message));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // An answer of an unexpected shape (a field missing, a vault without the key): this provider only.
                errors.Add(new ProviderError(name, "error", ProviderHttp.Trim(ex.Message)));
            }
        }
        return (offers, errors);
    }

    private static async Task<Results<Ok<GpuOffersResponse>, ValidationProblem>> OffersAsync(
        GpuProviders providers, string? gpu, double? minVram, bool? spot, string? region, int? count, int? limit, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, null);
        if (minVram is { } v && (!double.IsFinite(v) || v is < 0 or > 1024))
        {
            errors.Add("minVram", "minVram must be between 0 and 1024 (GB).");
        }
        if (count is < 1 or > 16)
        {
            errors.Add("count", "count must be between 1 and 16.");
        }
        errors.MaxLength("gpu", gpu, 100);
        errors.MaxLength("region", region, 100);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var (offers, failures) = await CollectAsync(providers, new GpuConstraints([], minVram ?? 0, count ?? 1), cancellationToken);
        var matching = offers
            .Where(o => gpu is null || o.Gpu.Contains(gpu, StringComparison.OrdinalIgnoreCase))
            .Where(o => spot is null || o.Spot == spot)
            .Where(o => region is null || o.Region.Contains(region, StringComparison.OrdinalIgnoreCase))
            .OrderBy(o => o.PricePerHour).ThenBy(o => o.Provider, StringComparer.Ordinal).ThenBy(o => o.Id, StringComparer.Ordinal)
            .Take(size)
            .ToList();
        return TypedResults.Ok(new GpuOffersResponse(matching, failures));
    }

    private static async Task<Results<Created<GpuPoolCreated>, Ok<GpuPoolCreated>, ValidationProblem, ProblemHttpResult>> CreatePoolAsync(
        GpuPoolRequest request, bool? dryRun, GpuProviders providers, GpuStore store, IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (Validate(request) is { } problem)
        {
            return problem;
        }
        var spec = Spec(request);
        var (offers, failures) = await CollectAsync(providers, spec.Gpu, cancellationToken);
        var (ranked, rejected) = PlacementPlanner.Rank(spec with { Budget = new GpuBudget(null, null) }, offers, new Spend(0, 0), TimeSpan.FromHours(1));
        var cheapest = ranked.OrderBy(o => o.PricePerHour).FirstOrDefault();
        var price = cheapest?.PricePerHour ?? 0;
        var maxDaily = price * spec.Max * 24;
        var forecast = new GpuForecast(cheapest, price * spec.Min * 24, maxDaily, maxDaily * 30,
            (spec.Budget.Daily is null || maxDaily <= spec.Budget.Daily) && (spec.Budget.Monthly is null || maxDaily * 30 <= spec.Budget.Monthly), rejected, failures);
        if (dryRun == true)
        {
            return TypedResults.Ok(new GpuPoolCreated(null, forecast));
        }
        var actor = context.User.ActorId();
        var created = await database.AuditedAsync(audit, () => store.CreatePoolAsync(spec, actor, cancellationToken),
            ok => ok ? new AuditEvent("gpu.pool.create", AuditOutcome.Success) { Target = $"gpu-pool:{spec.Name}", Details = new Dictionary<string, string>
            {
                ["max"] = spec.Max.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["budgetDaily"] = spec.Budget.Daily?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none",
            } }.From(context) : null, cancellationToken);
        if (!created)
        {
            return Problems.Conflict($"A pool named {spec.Name} exists.");
        }
        return TypedResults.Created($"/api/v1/gpu/pools/{spec.Name}", new GpuPoolCreated(await store.PoolAsync(spec.Name, cancellationToken), forecast));
    }

    private static async Task<Results<Ok<GpuPoolPage>, ValidationProblem>> ListPoolsAsync(GpuStore store, int? limit, string? after, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var pools = await store.PoolsAsync(after, size + 1, cancellationToken);
        return TypedResults.Ok(new GpuPoolPage([.. pools.Take(size)], pools.Count > size ? pools[size - 1].Spec.Name : null));
    }

    private static async Task<Results<Ok<GpuPoolResponse>, ProblemHttpResult>> GetPoolAsync(string name, GpuStore store, CancellationToken cancellationToken) =>
        name.Length <= 40 && await store.PoolAsync(name, cancellationToken) is { } pool ? TypedResults.Ok(pool) : Problems.NotFound("The pool");

    private static async Task<Results<NoContent, ProblemHttpResult>> DeletePoolAsync(string name, GpuStore store, IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var deleted = name.Length <= 40 && await database.AuditedAsync(audit, () => store.DeletePoolAsync(name, cancellationToken),
            ok => ok ? new AuditEvent("gpu.pool.delete", AuditOutcome.Success) { Target = $"gpu-pool:{name}" }.From(context) : null, cancellationToken);
        return deleted ? TypedResults.NoContent() : Problems.NotFound("The pool");
    }

    private static async Task<Results<Created<GpuDecisionResponse>, ProblemHttpResult>> PlaceAsync(
        string name, GpuProviders providers, GpuStore store, IAuditLog audit, IOptions<GpuOptions> options, HttpContext context, CancellationToken cancellationToken)
    {
        if (name.Length > 40 || await store.PoolAsync(name, cancellationToken) is not { } pool)
        {
            return Problems.NotFound("The pool");
        }
        var spec = pool.Spec;
        // One placement per pool at a time on this node, so two requests cannot both pass the same budget and max checks.
        var gate = PoolGates.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        PlacementDecision decision;
        GpuDecisionResponse recorded;
        try
        {
            if (await store.LiveInstancesAsync(name, cancellationToken) is var live && live >= spec.Max)
            {
                return Problems.Conflict($"The pool runs {live} workers, its max is {spec.Max}: terminate one or widen the pool.");
            }
            var (offers, listing) = await CollectAsync(providers, spec.Gpu, cancellationToken);
            var spend = await store.SpendAsync(name, cancellationToken);
            var all = providers.All();
            string? instance = null;
            decision = await PlacementPlanner.PlaceAsync(spec, offers, spend, options.Value.ForecastWindow, async (offer, ct) =>
            {
                instance = await all[offer.Provider].LaunchAsync(offer, new GpuLaunchRequest($"{spec.Name}-{Guid.NewGuid().ToString("N")[..8]}", options.Value.StartupScript.Replace("{pool}", spec.Name, StringComparison.Ordinal), spec.MaxPricePerHour), ct);
            }, cancellationToken);
            if (decision.Chosen is null && listing.Count > 0)
            {
                // A key the provider refuses fails at listing already: that belongs in the reason.
                var stopped = offers.Count == 0 && listing.All(l => l.Failure is "auth" or "quota") ? PlacementPlanner.StoppedQuotaOrAuth : decision.Stopped;
                decision = decision with { Stopped = $"{stopped}; providers that did not list offers: {string.Join(", ", listing.Select(l => $"{l.Provider} ({l.Failure})"))}" };
            }
            // Recorded whatever the caller does now: a machine that started must be in the log.
            recorded = await store.RecordAsync(name, decision, instance, context.User.ActorId(), CancellationToken.None);
        }
        finally
        {
            gate.Release();
        }
        await audit.AppendAsync(new AuditEvent("gpu.place", decision.Chosen is null ? AuditOutcome.Failure : AuditOutcome.Success)
        {
            Target = $"gpu-pool:{name}",
            Details = new Dictionary<string, string>
            {
                ["decision"] = recorded.Id,
                ["chosen"] = decision.Chosen is { } c ? $"{c.Provider}/{c.Id} ${c.PricePerHour}/h" : "none",
                ["rejected"] = decision.Rejected.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        }.From(context), CancellationToken.None);
        if (decision.Chosen is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Nothing could be launched",
                detail: decision.Stopped, extensions: new Dictionary<string, object?> { ["decision"] = recorded.Id, ["rejected"] = decision.Rejected.Count });
        }
        return TypedResults.Created($"/api/v1/gpu/decisions?pool={name}", recorded);
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> PoolGates = new(StringComparer.Ordinal);

    private static async Task<Results<NoContent, ProblemHttpResult>> TerminateAsync(
        string name, string instanceId, GpuProviders providers, GpuStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (name.Length > 40 || instanceId.Length > 200 || await store.InstanceProviderAsync(name, instanceId, cancellationToken) is not { } provider
            || !providers.All().TryGetValue(provider, out var adapter))
        {
            return Problems.NotFound("A live instance of that pool");
        }
        try
        {
            await adapter.TerminateAsync(instanceId, cancellationToken);
        }
        catch (GpuLaunchException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "The provider did not terminate it", detail: ex.Message);
        }
        await store.MarkTerminatedAsync(name, instanceId, CancellationToken.None);
        await audit.AppendAsync(new AuditEvent("gpu.terminate", AuditOutcome.Success) { Target = $"gpu-pool:{name}", Details = new Dictionary<string, string> { ["instance"] = instanceId } }.From(context), CancellationToken.None);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<GpuDecisionPage>, ValidationProblem>> DecisionsAsync(GpuStore store, string? pool, int? limit, string? after, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        errors.MaxLength("pool", pool, 40);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var items = await store.DecisionsAsync(pool, after, size + 1, cancellationToken);
        return TypedResults.Ok(new GpuDecisionPage([.. items.Take(size)], items.Count > size ? items[size - 1].Id : null));
    }

    private static ValidationProblem? Validate(GpuPoolRequest r)
    {
        var errors = new ValidationErrors();
        if (r.Name is null || !PoolName().IsMatch(r.Name))
        {
            errors.Add("name", "name must be 1-40 lower-case letters, digits and '-'.");
        }
        if (r.JobTypes is not { Count: > 0 and <= 20 } || r.JobTypes.Any(t => string.IsNullOrWhiteSpace(t) || t.Length > 100))
        {
            errors.Add("jobTypes", "jobTypes must name 1-20 job types (e.g. analysis.caption).");
        }
        if (r.Gpu?.MinVramGb is { } vram && (!double.IsFinite(vram) || vram is < 0 or > 1024))
        {
            errors.Add("gpu.minVramGb", "gpu.minVramGb must be between 0 and 1024.");
        }
        if (r.Gpu?.Count is < 1 or > 16)
        {
            errors.Add("gpu.count", "gpu.count must be between 1 and 16.");
        }
        if (r.Gpu?.Types is { Count: > 20 } || r.Gpu?.Types?.Any(t => string.IsNullOrWhiteSpace(t) || t.Length > 100) == true)
        {
            errors.Add("gpu.types", "gpu.types must list at most 20 GPU names.");
        }
        if (r.Min is < 0 or > 100)
        {
            errors.Add("min", "min must be between 0 and 100.");
        }
        if (r.Max is null or < 1 or > 100 || r.Max < (r.Min ?? 0))
        {
            errors.Add("max", "max is required, between 1 and 100, and not below min.");
        }
        if (r.IdleTimeout is { } idle && (idle < TimeSpan.FromMinutes(1) || idle > TimeSpan.FromDays(1)))
        {
            errors.Add("idleTimeout", "idleTimeout must be between 00:01:00 and 1.00:00:00.");
        }
        if (r.MaxPricePerHour is <= 0 or > 1000)
        {
            errors.Add("maxPricePerHour", "maxPricePerHour must be above 0 and at most 1000.");
        }
        if (r.Budget?.Daily is < 0 || r.Budget?.Monthly is < 0)
        {
            errors.Add("budget", "budget amounts cannot be negative.");
        }
        if (r.Budget is null || (r.Budget.Daily is null && r.Budget.Monthly is null))
        {
            errors.Add("budget", "budget must set daily, monthly or both: a pool that launches machines needs a limit.");
        }
        foreach (var provider in (r.Providers?.Allow ?? []).Concat(r.Providers?.Deny ?? []))
        {
            if (provider is not ("vast" or "lambda" or "runpod"))
            {
                errors.Add("providers", $"providers names vast, lambda or runpod; '{(provider?.Length > 40 ? provider[..40] : provider)}' is not one.");
                break;
            }
        }
        return errors.Any ? errors.ToProblem() : null;
    }

    private static GpuPoolSpec Spec(GpuPoolRequest r) => new(
        r.Name!, [.. r.JobTypes!.Select(t => t.Trim())], new GpuConstraints([.. r.Gpu?.Types ?? []], r.Gpu?.MinVramGb ?? 0, r.Gpu?.Count ?? 1),
        r.Min ?? 0, r.Max!.Value, r.IdleTimeout ?? TimeSpan.FromMinutes(10), r.MaxPricePerHour, new GpuBudget(r.Budget!.Daily, r.Budget.Monthly),
        new ProviderFilter([.. r.Providers?.Allow ?? []], [.. r.Providers?.Deny ?? []]), r.AllowSpot ?? true);

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,39}$", RegexOptions.CultureInvariant)]
    private static partial Regex PoolName();
}
