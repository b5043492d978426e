using System.Globalization;
using MetadataExtractor;
using MetadataExtractor.Formats.Exif;
using MetadataExtractor.Formats.Xmp;
using NetVips;
using Directory = MetadataExtractor.Directory;

namespace Fundament.Media.Processing;

/// <summary>
/// Images: metadata with MetadataExtractor (EXIF, IPTC, XMP, GPS), thumbnails with libvips
/// (shrink-on-load, EXIF orientation applied, decoded in a stream, never whole in memory).
/// </summary>
internal static class ImageProcessor
{
    private const int MaxRawTags = 1000;

    static ImageProcessor()
    {
        // A server decodes many different files once each: libvips' operation cache only holds memory.
        Cache.Max = 0;
        Cache.MaxFiles = 0;
        Cache.MaxMem = 0;
        // Parallelism comes from running several jobs at once (Fundament:Jobs, default one per core);
        // one libvips thread per pipeline keeps each job's buffers to one set.
        NetVips.NetVips.Concurrency = 1;
    }

    /// <summary>Reads the header only and refuses decompression bombs before any pixel is decoded.</summary>
    public static (int Width, int Height) CheckHeader(string path, long maxPixels)
    {
        Image header;
        try
        {
            header = Image.NewFromFile(path, access: Enums.Access.Sequential);
        }
        catch (VipsException ex)
        {
            throw new MediaRejectedException("the image cannot be decoded: " + FirstLine(ex.Message));
        }
        using (header)
        {
            var pixels = (long)header.Width * header.Height;
            if (pixels > maxPixels)
            {
                throw new MediaRejectedException($"the image is {header.Width}×{header.Height} = {pixels:N0} pixels; the limit is {maxPixels:N0} (Fundament:Media:MaxPixels)");
            }
            return (header.Width, header.Height);
        }
    }

    /// <summary>
    /// Writes both thumbnails (orientation applied). A file whose pixel data ends early (a phone that
    /// lost power, a copy cut short) is rendered the way browsers and vipsthumbnail render it, with
    /// the missing part grey, and a warning is added to <paramref name="warnings"/>; a file from which
    /// (next to) nothing decodes is refused.
    /// </summary>
    public static IReadOnlyList<RenderedDerivative> Thumbnails(string source, string workDir, int large, int small, string format, long maxPixels, List<string>? warnings = null)
    {
        CheckHeader(source, maxPixels);
        try
        {
            return Render(source, workDir, large, small, format, "fail_on=truncated", out _);
        }
        catch (VipsException strict) when (IsCutShort(strict.Message))
        {
            var reason = FirstLine(strict.Message);
            double decoded;
            IReadOnlyList<RenderedDerivative> lenient;
            try
            {
                lenient = Render(source, workDir, large, small, format, "fail_on=none", out decoded);
            }
            catch (VipsException)
            {
                throw new MediaRejectedException("the image cannot be decoded: " + reason);
            }
            if (decoded < MinDecodedFraction)
            {
                throw new MediaRejectedException("the image cannot be decoded: no pixel data before the file ends (" + reason + ")");
            }
            warnings?.Add(decoded >= 0.995
                ? $"the image data ends early ({reason}); it decoded whole at reduced quality"
                : $"the image data ends early ({reason}); about {decoded:P0} of it decoded, the rest is grey");
            return lenient;
        }
        catch (VipsException ex)
        {
            // Corrupt rather than cut short: not decoded leniently, a grey picture would hide the damage.
            throw new MediaRejectedException("the image cannot be decoded: " + FirstLine(ex.Message));
        }
    }

    /// <summary>Whether a decoder's error says the data ended early (libjpeg, libpng/libspng, libtiff, libwebp wordings).</summary>
    internal static bool IsCutShort(string message) =>
        message.Contains("premature end", StringComparison.OrdinalIgnoreCase)
        || message.Contains("truncated", StringComparison.OrdinalIgnoreCase)
        || message.Contains("unexpected end", StringComparison.OrdinalIgnoreCase)
        || message.Contains("end of file", StringComparison.OrdinalIgnoreCase)
        || message.Contains("unexpected EOF", StringComparison.OrdinalIgnoreCase);

    /// <summary>Below this share of rows decoded, a cut-short file counts as undecodable rather than damaged.</summary>
    internal const double MinDecodedFraction = 0.02;

    private static IReadOnlyList<RenderedDerivative> Render(string source, string workDir, int large, int small, string format, string loadOptions, out double decodedFraction)
    {
        var extension = format == "jpeg" ? "jpg" : "webp";
        var mime = format == "jpeg" ? "image/jpeg" : "image/webp";
        var largePath = Path.Combine(workDir, $"thumb-large.{extension}");
        var smallPath = Path.Combine(workDir, $"thumb-small.{extension}");
        // Decoded once, streaming with shrink-on-load; the large result (at most a few MB) is kept
        // in memory so the small one is made from it instead of decoding the original again.
        // From a stream rather than the path: libvips then reads the file in blocks instead of mapping it,
        // which for a 50 MP JPEG is about 25 MB less resident memory per job (measured).
        using var file = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        // fail_on goes to the loader as an option string: the failOn argument is not applied to stream sources.
        using var big = Image.ThumbnailStream(file, large, height: large, size: Enums.Size.Down, optionString: loadOptions);
        using var flattened = big.HasAlpha() && format == "jpeg" ? big.Flatten(background: [255, 255, 255]) : big.Copy();
        using var flat = flattened.CopyMemory();
        decodedFraction = loadOptions == "fail_on=none" ? DecodedFraction(flat) : 1;
        Save(flat, largePath, format);
        using var little = flat.ThumbnailImage(small, height: small, size: Enums.Size.Down);
        Save(little, smallPath, format);
        return
        [
            new("thumb-large", largePath, mime, flat.Width, flat.Height),
            new("thumb-small", smallPath, mime, little.Width, little.Height),
        ];
    }

    /// <summary>
    /// The share of rows above the flat band a decoder fills in where the data ran out (libjpeg and
    /// libpng leave one constant colour). Counted on the thumbnail, from the bottom up; an image that
    /// decoded whole at lower quality (a cut-short progressive JPEG) has no such band and counts as 1.
    /// The thumbnail is already turned upright, so the band can be at any edge: all four are looked at.
    /// </summary>
    internal static double DecodedFraction(Image image)
    {
        var fraction = BottomDecodedFraction(image);
        foreach (var angle in new[] { Enums.Angle.D90, Enums.Angle.D180, Enums.Angle.D270 })
        {
            using var turned = image.Rot(angle);
            fraction = Math.Min(fraction, BottomDecodedFraction(turned));
        }
        return fraction;
    }

    private static double BottomDecodedFraction(Image image)
    {
        // 16-bit thumbnails (from 16-bit PNG or TIFF) are shifted, not clipped, to 8 bits.
        using var bytes = image.Format == Enums.BandFormat.Ushort ? image.Cast(Enums.BandFormat.Uchar, shift: true) : image.Cast(Enums.BandFormat.Uchar);
        var data = bytes.WriteToMemory<byte>();
        var rowLength = bytes.Width * bytes.Bands;
        var last = data.AsSpan(data.Length - rowLength, rowLength);
        var flatRows = 0;
        for (var row = bytes.Height - 1; row >= 0; row--)
        {
            var line = data.AsSpan(row * rowLength, rowLength);
            var flatLine = true;
            for (var i = 0; i < line.Length; i++)
            {
                // Resampling blurs the edge of the band by a pixel or two; the band itself is exact.
                if (Math.Abs(line[i] - last[i % bytes.Bands]) > 1)
                {
                    flatLine = false;
                    break;
                }
            }
            if (!flatLine)
            {
                break;
            }
            flatRows++;
        }
        // One flat row at the bottom is a photo of a wall as often as a cut-short file.
        return flatRows <= 1 ? 1 : (double)(bytes.Height - flatRows) / bytes.Height;
    }

    private static void Save(Image image, string path, string format)
    {
        if (format == "jpeg")
        {
            image.Jpegsave(path, q: 82, keep: Enums.ForeignKeep.None, optimizeCoding: true);
        }
        else
        {
            image.Webpsave(path, q: 80, keep: Enums.ForeignKeep.None, effort: 2);
        }
    }

    /// <summary>Normalized fields and every raw tag the file carries.</summary>
    public static MediaMetadata Metadata(string path, int? width, int? height)
    {
        IReadOnlyList<Directory> directories;
        try
        {
            directories = ImageMetadataReader.ReadMetadata(path);
        }
        catch (Exception ex) when (ex is ImageProcessingException or IOException or MetadataException)
        {
            // Metadata is optional; pixels decoded fine. Keep what we know.
            return new MediaMetadata { Width = width, Height = height, Raw = { ["error"] = ex.Message } };
        }
        var metadata = new MediaMetadata { Width = width, Height = height };
        var ifd0 = directories.OfType<ExifIfd0Directory>().FirstOrDefault();
        var sub = directories.OfType<ExifSubIfdDirectory>().FirstOrDefault();
        var gps = directories.OfType<GpsDirectory>().FirstOrDefault();
        metadata.CameraMake = Clean(ifd0?.GetString(ExifDirectoryBase.TagMake));
        metadata.CameraModel = Clean(ifd0?.GetString(ExifDirectoryBase.TagModel));
        metadata.Lens = Clean(sub?.GetString(ExifDirectoryBase.TagLensModel));
        if (ifd0 is not null && ifd0.TryGetInt32(ExifDirectoryBase.TagOrientation, out var orientation) && orientation is >= 1 and <= 8)
        {
            metadata.Orientation = orientation;
        }
        (metadata.TakenAt, metadata.TakenAtSource) = TakenAt(directories, sub, ifd0);
        if (gps?.GetGeoLocation() is { } location && !double.IsNaN(location.Latitude) && !double.IsNaN(location.Longitude)
            && location.Latitude is >= -90 and <= 90 && location.Longitude is >= -180 and <= 180)
        {
            double? altitude = gps!.TryGetRational(GpsDirectory.TagAltitude, out var alt) ? Math.Round(alt.ToDouble() * (gps.TryGetInt32(GpsDirectory.TagAltitudeRef, out var below) && below == 1 ? -1 : 1), 2) : null;
            metadata.Gps = new GpsPosition(Math.Round(location.Latitude, 7), Math.Round(location.Longitude, 7), altitude);
        }
        if (sub is not null)
        {
            metadata.ExposureTime = sub.TryGetRational(ExifDirectoryBase.TagExposureTime, out var exposure)
                ? (exposure.Numerator == 1 || exposure.ToDouble() >= 1 ? exposure.ToSimpleString(allowDecimal: true) : $"1/{Math.Round(1 / exposure.ToDouble())}")
                : null;
            metadata.FNumber = sub.TryGetRational(ExifDirectoryBase.TagFNumber, out var f) ? Math.Round(f.ToDouble(), 1) : null;
            metadata.Iso = sub.TryGetInt32(ExifDirectoryBase.TagIsoEquivalent, out var iso) ? iso : null;
            metadata.FocalLength = sub.TryGetRational(ExifDirectoryBase.TagFocalLength, out var focal) ? Math.Round(focal.ToDouble(), 1) : null;
        }
        foreach (var directory in directories)
        {
            foreach (var tag in directory.Tags)
            {
                if (metadata.Raw.Count >= MaxRawTags)
                {
                    break;
                }
                if (tag.Description is { } description)
                {
                    metadata.Raw[$"{directory.Name}:{tag.Name}"] = description.Length > 500 ? description[..500] : description;
                }
            }
            if (directory is XmpDirectory xmp)
            {
                foreach (var (key, value) in xmp.GetXmpProperties())
                {
                    if (metadata.Raw.Count < MaxRawTags && !string.IsNullOrEmpty(value))
                    {
                        metadata.Raw[$"XMP:{key}"] = value.Length > 500 ? value[..500] : value;
                    }
                }
            }
        }
        return metadata;
    }

    /// <summary>
    /// When the picture was taken, as ISO 8601 with the offset when the camera wrote one, and which
    /// tag said so: DateTimeOriginal, else CreateDate (DateTimeDigitized), else IFD0 DateTime, else
    /// XMP's CreateDate, else the QuickTime container's creation time (HEIC).
    /// </summary>
    private static (string? Value, string? Source) TakenAt(IReadOnlyList<Directory> directories, ExifSubIfdDirectory? sub, ExifIfd0Directory? ifd0)
    {
        if (Exif(sub, ExifDirectoryBase.TagDateTimeOriginal, ExifDirectoryBase.TagSubsecondTimeOriginal, ExifDirectoryBase.TagTimeZoneOriginal) is { } original)
        {
            return (original, "DateTimeOriginal");
        }
        if (Exif(sub, ExifDirectoryBase.TagDateTimeDigitized, ExifDirectoryBase.TagSubsecondTimeDigitized, ExifDirectoryBase.TagTimeZoneDigitized) is { } digitized)
        {
            return (digitized, "CreateDate");
        }
        if (Exif(ifd0, ExifDirectoryBase.TagDateTime, ExifDirectoryBase.TagSubsecondTime, ExifDirectoryBase.TagTimeZone, sub) is { } modified)
        {
            return (modified, "ModifyDate");
        }
        foreach (var xmp in directories.OfType<XmpDirectory>())
        {
            var properties = xmp.GetXmpProperties();
            if ((properties.TryGetValue("xmp:CreateDate", out var xmpDate) ? xmpDate : properties.TryGetValue("photoshop:DateCreated", out var psDate) ? psDate : null) is { } text
                && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed))
            {
                var hasOffset = text.Length > 19 && (text.EndsWith('Z') || text[^6] is '+' or '-');
                return (hasOffset ? parsed.ToString("yyyy-MM-ddTHH:mm:sszzz", CultureInfo.InvariantCulture) : parsed.DateTime.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture), "XMP:CreateDate");
            }
        }
        if (directories.OfType<MetadataExtractor.Formats.QuickTime.QuickTimeMovieHeaderDirectory>().FirstOrDefault() is { } movie
            && movie.TryGetDateTime(MetadataExtractor.Formats.QuickTime.QuickTimeMovieHeaderDirectory.TagCreated, out var created)
            && created.Year > 1904)
        {
            // QuickTime stores UTC seconds since 1904; 1904 itself means "not set".
            return (new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc)).ToString("yyyy-MM-ddTHH:mm:sszzz", CultureInfo.InvariantCulture), "container");
        }
        return (null, null);
    }

    private static string? Exif(Directory? directory, int dateTag, int subsecTag, int offsetTag, Directory? offsetDirectory = null)
    {
        var text = directory?.GetString(dateTag);
        if (text is null || !DateTime.TryParseExact(text.Trim().TrimEnd('\0'), "yyyy:MM:dd HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
        {
            return null;
        }
        var subsecDirectory = offsetDirectory ?? directory!;
        if (subsecDirectory.TryGetInt32(subsecTag, out var subsec) && subsec > 0)
        {
            var digits = subsecDirectory.GetString(subsecTag)!.Trim();
            local = local.AddTicks((long)(subsec * Math.Pow(10, 7 - digits.Length)));
        }
        var offsetText = (offsetDirectory ?? directory!).GetString(offsetTag);
        var format = local.Millisecond > 0 ? "yyyy-MM-ddTHH:mm:ss.fff" : "yyyy-MM-ddTHH:mm:ss";
        if (offsetText is not null && TimeSpan.TryParseExact(offsetText.Trim().TrimStart('+', '-'), @"hh\:mm", CultureInfo.InvariantCulture, out var offset)
            && offset <= TimeSpan.FromHours(14) && local.Year > 1 && local.Year < 9999)
        {
            if (offsetText.Trim().StartsWith('-'))
            {
                offset = -offset;
            }
            return new DateTimeOffset(local, offset).ToString(format + "zzz", CultureInfo.InvariantCulture);
        }
        return local.ToString(format, CultureInfo.InvariantCulture);
    }

    private static string? Clean(string? value)
    {
        var trimmed = value?.Trim().TrimEnd('\0').Trim();
        return string.IsNullOrEmpty(trimmed) ? null : trimmed;
    }

    internal static string FirstLine(string message)
    {
        var text = string.Join("; ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith("unable to call", StringComparison.Ordinal)));
        return text.Length > 300 ? text[..300] : text.Length == 0 ? message : text;
    }
}

/// <summary>A derivative file rendered into the work folder, ready to store.</summary>
internal sealed record RenderedDerivative(string Name, string Path, string Mime, int? Width, int? Height);
