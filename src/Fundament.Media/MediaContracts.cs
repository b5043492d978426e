using System.Text.Json.Serialization;

namespace Fundament.Media;

/// <summary>Asset states, lower-case on the wire.</summary>
public static class MediaState
{
    public const string Uploaded = "uploaded";
    public const string Processing = "processing";
    public const string Ready = "ready";
    public const string Failed = "failed";
    public const string Archived = "archived";
    public const string Trashed = "trashed";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Uploaded, Processing, Ready, Failed, Archived, Trashed };
}

/// <summary>Normalized metadata; fields that do not apply to the type, or that the file does not carry, are null.</summary>
public sealed class MediaMetadata
{
    public int? Width { get; set; }
    public int? Height { get; set; }

    /// <summary>ISO 8601, with the offset when the file records one.</summary>
    public string? TakenAt { get; set; }

    /// <summary>
    /// Where <see cref="TakenAt"/> came from, best first: <c>DateTimeOriginal</c>, <c>CreateDate</c>
    /// (EXIF DateTimeDigitized), <c>ModifyDate</c> (IFD0 DateTime), <c>XMP:CreateDate</c>,
    /// <c>container</c> (the QuickTime/MP4 creation time).
    /// </summary>
    public string? TakenAtSource { get; set; }
    public string? CameraMake { get; set; }
    public string? CameraModel { get; set; }
    public string? Lens { get; set; }

    /// <summary>EXIF orientation 1-8.</summary>
    public int? Orientation { get; set; }
    public GpsPosition? Gps { get; set; }
    public string? ExposureTime { get; set; }
    public double? FNumber { get; set; }
    public int? Iso { get; set; }
    public double? FocalLength { get; set; }
    public string? Container { get; set; }
    public double? DurationSeconds { get; set; }
    public long? Bitrate { get; set; }
    public string? VideoCodec { get; set; }
    public string? AudioCodec { get; set; }
    public double? FrameRate { get; set; }
    public int? SampleRate { get; set; }
    public int? Channels { get; set; }
    public int? PageCount { get; set; }
    public string? Title { get; set; }
    public string? Author { get; set; }

    /// <summary>What was wrong with the file but did not stop it, e.g. pixel data that ends early.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? Warnings { get; set; }

    /// <summary>Every tag the extractor found, as <c>group:name</c> → text.</summary>
    public Dictionary<string, string> Raw { get; set; } = new(StringComparer.Ordinal);
}

public sealed record GpsPosition(double Latitude, double Longitude, double? Altitude = null);

public sealed record DerivativeResponse(string Name, string Mime, int? Width, int? Height, long Size, string Url);

public sealed record HistoryEntry(DateTimeOffset At, string? From, string To, string? Actor, string? Reason);

/// <summary>An asset as the API shows it.</summary>
public sealed record MediaResponse(
    string Id, string Sha256, string State, string Type, string Mime, long Size, string? Filename, string? Title, IReadOnlyList<string> Tags,
    bool LegalHold, string Tier, string Owner, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? FailureReason,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, DateTimeOffset? TrashedAt, MediaMetadata? Metadata,
    IReadOnlyList<DerivativeResponse>? Derivatives = null, IReadOnlyList<HistoryEntry>? History = null, IReadOnlyList<string>? SharedWith = null);

public sealed record MediaPage(IReadOnlyList<MediaResponse> Items, string? Next);

/// <summary>PATCH body: only the fields given change.</summary>
public sealed record MediaPatch(string? Title, IReadOnlyList<string>? Tags, bool? LegalHold, IReadOnlyList<string>? SharedWith);

public sealed record PolicyRequest(string? Name, string? Type, string? Tag, int? ArchiveAfterDays, int? TrashAfterDays, bool? Enabled);

public sealed record PolicyResponse(string Id, string Name, string? Type, string? Tag, int? ArchiveAfterDays, int? TrashAfterDays, bool Enabled, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>What a policy run did (or, in a dry run, would do).</summary>
public sealed record PolicyRunResponse(bool DryRun, IReadOnlyList<PolicyAction> Actions);

public sealed record PolicyAction(string PolicyId, string AssetId, string Action, string From, string To);

public sealed record StatsBucket(string Type, string State, long Count, long Bytes);

public sealed record MediaStats(IReadOnlyList<StatsBucket> Buckets, long TotalCount, long TotalBytes, double? ProcessingP50Ms, double? ProcessingP95Ms, double FailureRate);
