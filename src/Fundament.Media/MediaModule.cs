using Fundament.Jobs;
using Fundament.Media.Processing;
using Fundament.Media.Storage;
using Fundament.Media.Uploads;

namespace Fundament.Media;

/// <summary>
/// Module <c>media</c>: upload (multipart and tus), dedupe, metadata, thumbnails and previews,
/// lifecycle policies, stats. Nodes with role <c>media</c> serve the API and sweep expired
/// uploads; nodes with role <c>media-worker</c> run processing jobs and the lifecycle policies.
/// Other nodes only know its permissions and events.
/// </summary>
public sealed class MediaModule : FundamentModule
{
    public override string Name => "media";

    /// <summary>Processing runs on the job queue; lifecycle events are published through delivery's webhooks.</summary>
    public override IReadOnlyList<string> Requires { get; } = ["jobs", "delivery"];

    public override string ApiRole => FundamentRoles.Media;

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(MediaPermissions.Own, "Upload and manage one's own media.", BuiltInRoles.User),
        new(MediaPermissions.Shared, "Read media others shared with one.", BuiltInRoles.User, BuiltInRoles.Guest),
        new(MediaPermissions.Admin, "Every asset, lifecycle policies and all webhooks."),
    ];

    public override IReadOnlyList<EventTypeDefinition> EventTypes { get; } =
    [
        new(MediaEvents.Ready, "An asset finished processing; data holds the asset with its metadata and derivatives."),
        new(MediaEvents.Failed, "Processing an asset failed for good; data holds the asset and the error."),
        new(MediaEvents.Trashed, "An asset moved to the trash."),
        new(MediaEvents.Purged, "An asset and its content were deleted for good."),
        new(MediaEvents.Archived, "An asset's original moved to cold storage."),
        new(MediaEvents.Restored, "An asset came back from the trash or from cold storage."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var api = context.Runs(FundamentRoles.Media);
        var worker = context.Runs(FundamentRoles.MediaWorker);
        if (!api && !worker)
        {
            return;
        }
        var services = context.Services;
        services.AddSettings<MediaOptions, MediaOptionsValidator>(context.Configuration, MediaOptions.SectionName);
        services.TryAddSingleton<MediaBlobStores>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Fundament.Core.Backup.IBackupBlobSource, MediaBackupSource>());
        services.TryAddSingleton<MediaStore>();
        services.TryAddSingleton<MediaService>();
        services.TryAddSingleton<UploadStore>();
        services.TryAddSingleton<IUploadParts>(sp => sp.GetRequiredService<IOptions<MediaOptions>>().Value switch
        {
            { UploadParts: "store" } or { UploadParts: "auto", Storage.Provider: "s3" } => ActivatorUtilities.CreateInstance<StoreUploadParts>(sp),
            _ => ActivatorUtilities.CreateInstance<LocalUploadParts>(sp),
        });
        services.TryAddSingleton<LifecyclePolicyStore>();
        services.TryAddSingleton<LifecyclePolicyRunner>();
        services.TryAddSingleton<MediaAccess>();
        MediaQuotaMeter.Register(services);
        var policies = context.Enabled(MediaOptions.SectionName, nameof(MediaOptions.PolicyRunnerEnabled));
        if (api && policies)
        {
            services.AddHostedService<UploadSweeper>();
        }
        if (worker)
        {
            services.AddJobHandler<MediaProcessor>();
            services.AddJobHandler<MediaMover>();
            if (policies)
            {
                services.AddHostedService(sp => sp.GetRequiredService<LifecyclePolicyRunner>());
            }
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        var max = endpoints.ServiceProvider.GetRequiredService<IOptions<MediaOptions>>().Value.MaxUploadBytes;
        endpoints.MapTusApi(max);
        endpoints.MapLifecyclePoliciesApi();
        endpoints.MapMediaApi(max);
    }
}
