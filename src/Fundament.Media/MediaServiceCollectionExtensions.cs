using Fundament.Delivery;
using Fundament.Jobs;
using Fundament.Media.Processing;
using Fundament.Media.Storage;
using Fundament.Media.Uploads;
using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Fundament.Media;

public static class MediaServiceCollectionExtensions
{
    /// <summary>
    /// Module <c>media</c>. <paramref name="worker"/> (role <c>media-worker</c>) makes this process
    /// run processing jobs and the lifecycle policies; the API is mapped with <see cref="MapMedia"/>
    /// (role <c>media</c>). The all-in-one process does both.
    /// </summary>
    public static IServiceCollection AddMedia(this IServiceCollection services, IConfiguration configuration, bool api, bool worker)
    {
        services.AddOptions<MediaOptions>()
            .Bind(configuration.GetSection(MediaOptions.SectionName))
            .Validate(o => o.MaxUploadBytes >= 1024, "Fundament:Media:MaxUploadBytes must be at least 1024.")
            .Validate(o => o.MaxPixels >= 1_000_000, "Fundament:Media:MaxPixels must be at least 1000000.")
            .Validate(o => o.ThumbnailSmall is >= 16 and <= 4096 && o.ThumbnailLarge is >= 16 and <= 8192 && o.ThumbnailSmall < o.ThumbnailLarge, "Fundament:Media thumbnail sizes: 16 <= ThumbnailSmall < ThumbnailLarge <= 8192.")
            .Validate(o => o.ThumbnailFormat is "webp" or "jpeg", "Fundament:Media:ThumbnailFormat must be webp or jpeg.")
            .Validate(o => o.TrashRetention >= TimeSpan.Zero, "Fundament:Media:TrashRetention must not be negative.")
            .Validate(o => o.UploadExpiry >= TimeSpan.FromMinutes(1), "Fundament:Media:UploadExpiry must be at least 00:01:00.")
            .Validate(o => o.ToolTimeout >= TimeSpan.FromSeconds(1), "Fundament:Media:ToolTimeout must be at least 00:00:01.")
            .Validate(o => o.ToolMemoryBytes >= 64L << 20, "Fundament:Media:ToolMemoryBytes must be at least 64 MiB.")
            .Validate(o => o.PolicyInterval >= TimeSpan.FromSeconds(10), "Fundament:Media:PolicyInterval must be at least 00:00:10.")
            .Validate(o => o.UploadParts is "auto" or "local" or "store", "Fundament:Media:UploadParts must be auto, local or store.")
            .Validate(o => ValidStore(o.Storage) && ValidStore(o.ColdStorage), "Fundament:Media:Storage and ColdStorage: Provider is local or s3, and s3 needs S3:Bucket.")
            .ValidateOnStart();
        services.AddMigrations(new MediaMigrations());
        services.TryAddSingleton<MediaStores>();
        services.TryAddSingleton<MediaStore>();
        services.TryAddSingleton<MediaService>();
        services.TryAddSingleton<UploadStore>();
        services.TryAddSingleton<IUploadParts>(sp => sp.GetRequiredService<IOptions<MediaOptions>>().Value switch
        {
            { UploadParts: "store" } or { UploadParts: "auto", Storage.Provider: "s3" } => ActivatorUtilities.CreateInstance<StoreUploadParts>(sp),
            _ => ActivatorUtilities.CreateInstance<LocalUploadParts>(sp),
        });
        services.TryAddSingleton<PolicyStore>();
        services.TryAddSingleton<PolicyRunner>();
        services.TryAddSingleton<MediaAccess>();
        MediaQuotaMeter.Register(services);
        if (api && configuration.GetValue(MediaOptions.SectionName + ":PolicyRunnerEnabled", true))
        {
            services.AddHostedService<UploadSweeper>();
        }
        if (worker)
        {
            services.AddJobHandler<MediaProcessor>();
            services.AddJobHandler<MediaMover>();
            if (configuration.GetValue(MediaOptions.SectionName + ":PolicyRunnerEnabled", true))
            {
                services.AddHostedService(sp => sp.GetRequiredService<PolicyRunner>());
            }
        }
        services.AddPermissions(MediaPermissions.Own, MediaPermissions.Shared, MediaPermissions.Admin);
        WebhookEvents.Register(MediaEvents.All);
        return services;
    }

    private static bool ValidStore(BlobStoreOptions store) =>
        store.Provider == "local" || (store.Provider == "s3" && !string.IsNullOrWhiteSpace(store.S3.Bucket));

    public static IEndpointRouteBuilder MapMedia(this IEndpointRouteBuilder endpoints)
    {
        var max = endpoints.ServiceProvider.GetRequiredService<IOptions<MediaOptions>>().Value.MaxUploadBytes;
        endpoints.MapTusApi(max);
        endpoints.MapPoliciesApi();
        endpoints.MapMediaApi(max);
        return endpoints;
    }
}
