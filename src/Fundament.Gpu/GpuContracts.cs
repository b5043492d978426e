using Fundament.Gpu.Placement;

namespace Fundament.Gpu;

public sealed record GpuConstraintsRequest(IReadOnlyList<string>? Types, double? MinVramGb, int? Count);

public sealed record GpuBudgetRequest(decimal? Daily, decimal? Monthly);

public sealed record ProviderFilterRequest(IReadOnlyList<string>? Allow, IReadOnlyList<string>? Deny);

/// <summary>A pool as created: what its workers run, on what, how many, for how much.</summary>
public sealed record GpuPoolRequest(
    string? Name, IReadOnlyList<string>? JobTypes, GpuConstraintsRequest? Gpu, int? Min, int? Max, TimeSpan? IdleTimeout,
    decimal? MaxPricePerHour, GpuBudgetRequest? Budget, ProviderFilterRequest? Providers, bool? AllowSpot);

/// <summary>What a pool would cost with the cheapest offer that fits it now, shown before it is created or widened.</summary>
/// <param name="Offer">The cheapest fitting offer now; null when none fits.</param>
/// <param name="MinDaily">Its price × <c>min</c> workers × 24 h: what the pool costs a day when idle.</param>
/// <param name="MaxDaily">Its price × <c>max</c> workers × 24 h: the most a day can cost.</param>
/// <param name="MaxMonthly">× 30 days.</param>
/// <param name="WithinBudget">Whether <paramref name="MaxDaily"/> and <paramref name="MaxMonthly"/> stay within the budget (placement enforces the budget either way).</param>
public sealed record GpuForecast(GpuOffer? Offer, decimal MinDaily, decimal MaxDaily, decimal MaxMonthly, bool WithinBudget, IReadOnlyList<RejectedOffer> Rejected, IReadOnlyList<ProviderError> ProviderErrors);

public sealed record GpuPoolResponse(GpuPoolSpec Spec, string? CreatedBy, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

public sealed record GpuPoolCreated(GpuPoolResponse? Pool, GpuForecast Forecast);

public sealed record GpuPoolPage(IReadOnlyList<GpuPoolResponse> Items, string? Next);

/// <summary>A provider that could not list its offers (down, refusing the key), named rather than hidden.</summary>
public sealed record ProviderError(string Provider, string Failure, string Message);

public sealed record GpuOffersResponse(IReadOnlyList<GpuOffer> Items, IReadOnlyList<ProviderError> ProviderErrors);

/// <summary>One placement as the decision log keeps it: the offer launched (and the instance), every rejected one with its reason.</summary>
public sealed record GpuDecisionResponse(
    string Id, string Pool, DateTimeOffset At, GpuOffer? Chosen, string? InstanceId, IReadOnlyList<RejectedOffer> Rejected, string? Stopped, decimal ForecastCost, string? RequestedBy);

public sealed record GpuDecisionPage(IReadOnlyList<GpuDecisionResponse> Items, string? Next);
