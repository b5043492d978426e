using System.Globalization;
using System.Text.Json;

namespace Fundament.Media.Processing;

/// <summary>
/// Video and audio through ffprobe (container, codecs, duration, bitrate, resolution, frame rate,
/// tags) and ffmpeg (poster frame, short preview clip, waveform image).
/// </summary>
internal sealed class AvProcessor(MediaOptions options)
{
    public async Task<MediaMetadata> ProbeAsync(string path, CancellationToken cancellationToken)
    {
        var json = await ExternalTool.RunAsync("ffprobe", ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-i", path], options.ToolTimeout, options.ToolMemoryBytes, cancellationToken);
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var metadata = new MediaMetadata();
        if (!root.TryGetProperty("format", out var format) || !root.TryGetProperty("streams", out var streams) || streams.GetArrayLength() == 0)
        {
            throw new MediaRejectedException("ffprobe found no audio or video stream");
        }
        metadata.Container = Text(format, "format_name");
        metadata.DurationSeconds = Number(format, "duration") is { } d ? Math.Round(d, 3) : null;
        metadata.Bitrate = Number(format, "bit_rate") is { } b ? (long)b : null;
        AddTags(metadata, format, "format");
        foreach (var stream in streams.EnumerateArray())
        {
            var type = Text(stream, "codec_type");
            if (type == "video" && metadata.VideoCodec is null && !(stream.TryGetProperty("disposition", out var disposition) && disposition.TryGetProperty("attached_pic", out var pic) && pic.GetInt32() == 1))
            {
                metadata.VideoCodec = Text(stream, "codec_name");
                metadata.Width = stream.TryGetProperty("width", out var w) ? w.GetInt32() : null;
                metadata.Height = stream.TryGetProperty("height", out var h) ? h.GetInt32() : null;
                metadata.FrameRate = Rate(Text(stream, "avg_frame_rate")) ?? Rate(Text(stream, "r_frame_rate"));
                AddTags(metadata, stream, "video");
            }
            else if (type == "audio" && metadata.AudioCodec is null)
            {
                metadata.AudioCodec = Text(stream, "codec_name");
                metadata.SampleRate = Number(stream, "sample_rate") is { } rate ? (int)rate : null;
                metadata.Channels = stream.TryGetProperty("channels", out var c) ? c.GetInt32() : null;
                AddTags(metadata, stream, "audio");
            }
        }
        if (metadata.VideoCodec is null && metadata.AudioCodec is null)
        {
            throw new MediaRejectedException("ffprobe found no decodable audio or video stream");
        }
        metadata.Title = metadata.Raw.GetValueOrDefault("format:title");
        metadata.Author = metadata.Raw.GetValueOrDefault("format:artist") ?? metadata.Raw.GetValueOrDefault("format:author");
        metadata.TakenAt = metadata.Raw.GetValueOrDefault("format:creation_time") is { } created
            && DateTimeOffset.TryParse(created, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            ? at.ToString("yyyy-MM-ddTHH:mm:ssK", CultureInfo.InvariantCulture) : null;
        metadata.TakenAtSource = metadata.TakenAt is null ? null : "container";
        return metadata;
    }

    /// <summary>A frame from the first second (or the middle of a shorter clip), as PNG, for thumbnails and the poster.</summary>
    public async Task<string> PosterAsync(string path, MediaMetadata metadata, string workDir, CancellationToken cancellationToken)
    {
        var at = Math.Min(1.0, (metadata.DurationSeconds ?? 0) / 2);
        var output = Path.Combine(workDir, "poster-source.png");
        await ExternalTool.RunAsync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-ss", at.ToString("0.###", CultureInfo.InvariantCulture), "-i", path,
            "-frames:v", "1", "-an", "-f", "image2", "-c:v", "png", output], options.ToolTimeout, options.ToolMemoryBytes, cancellationToken);
        return File.Exists(output) ? output : throw new MediaRejectedException("ffmpeg produced no poster frame");
    }

    /// <summary>The first seconds, at most 640 wide, H.264 without sound, ready to stream (faststart).</summary>
    public async Task<RenderedDerivative> PreviewAsync(string path, string workDir, CancellationToken cancellationToken)
    {
        var output = Path.Combine(workDir, "preview.mp4");
        await ExternalTool.RunAsync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", path, "-t", options.PreviewLength.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture),
            "-vf", "scale='trunc(min(640,iw)/2)*2':-2", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", output], options.ToolTimeout, options.ToolMemoryBytes, cancellationToken);
        return new RenderedDerivative("preview", output, "video/mp4", null, null);
    }

    /// <summary>The audio's waveform as a PNG.</summary>
    public async Task<string> WaveformAsync(string path, string workDir, CancellationToken cancellationToken)
    {
        var output = Path.Combine(workDir, "waveform.png");
        await ExternalTool.RunAsync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", path, "-filter_complex",
            "aformat=channel_layouts=mono,showwavespic=s=1280x320:colors=0x3b82f6", "-frames:v", "1", output], options.ToolTimeout, options.ToolMemoryBytes, cancellationToken);
        return File.Exists(output) ? output : throw new MediaRejectedException("ffmpeg produced no waveform");
    }

    private static void AddTags(MediaMetadata metadata, JsonElement element, string group)
    {
        if (!element.TryGetProperty("tags", out var tags) || tags.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        foreach (var tag in tags.EnumerateObject())
        {
            if (metadata.Raw.Count < 500 && tag.Value.ValueKind == JsonValueKind.String)
            {
                var value = tag.Value.GetString()!;
                metadata.Raw[$"{group}:{tag.Name.ToLowerInvariant()}"] = value.Length > 500 ? value[..500] : value;
            }
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static double? Number(JsonElement element, string name) =>
        Text(element, name) is { } text && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) ? number : null;

    private static double? Rate(string? text)
    {
        if (text?.Split('/') is [var n, var d] && double.TryParse(n, CultureInfo.InvariantCulture, out var num) && double.TryParse(d, CultureInfo.InvariantCulture, out var den) && den > 0 && num > 0)
        {
            return Math.Round(num / den, 3);
        }
        return null;
    }
}
