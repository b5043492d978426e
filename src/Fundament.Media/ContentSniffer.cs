using System.Text;

namespace Fundament.Media;

/// <summary>What the content is, from its first bytes.</summary>
public sealed record SniffedType(string Kind, string Mime, string Extension);

public static class MediaKind
{
    public const string Image = "image";
    public const string Video = "video";
    public const string Audio = "audio";
    public const string Document = "document";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Image, Video, Audio, Document };
}

/// <summary>
/// Decides the type from magic bytes, never from the client's name or Content-Type. Only the
/// formats media can process are recognized; everything else (HTML, SVG, scripts, archives,
/// executables) is unsupported and refused with 415. See docs/adr/0011-media-by-hand.md.
/// </summary>
public static class ContentSniffer
{
    /// <summary>How many leading bytes <see cref="Sniff"/> wants.</summary>
    public const int HeaderLength = 64;

    public static SniffedType? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
        {
            return new(MediaKind.Image, "image/jpeg", "jpg");
        }
        if (head.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]))
        {
            return new(MediaKind.Image, "image/png", "png");
        }
        if (head.StartsWith("GIF87a"u8) || head.StartsWith("GIF89a"u8))
        {
            return new(MediaKind.Image, "image/gif", "gif");
        }
        if (head.StartsWith((ReadOnlySpan<byte>)[(byte)'I', (byte)'I', 42, 0]) || head.StartsWith((ReadOnlySpan<byte>)[(byte)'M', (byte)'M', 0, 42]))
        {
            return new(MediaKind.Image, "image/tiff", "tif");
        }
        if (head.Length >= 12 && head.StartsWith("RIFF"u8))
        {
            var form = head.Slice(8, 4);
            if (form.SequenceEqual("WEBP"u8))
            {
                return new(MediaKind.Image, "image/webp", "webp");
            }
            if (form.SequenceEqual("WAVE"u8))
            {
                return new(MediaKind.Audio, "audio/wav", "wav");
            }
            if (form.SequenceEqual("AVI "u8))
            {
                return new(MediaKind.Video, "video/x-msvideo", "avi");
            }
            return null;
        }
        if (head.Length >= 12 && head.Slice(4, 4).SequenceEqual("ftyp"u8))
        {
            return IsoBrand(head);
        }
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1A, 0x45, 0xDF, 0xA3]))
        {
            // EBML: the DocType says WebM or Matroska.
            return head.IndexOf("webm"u8) >= 0 ? new(MediaKind.Video, "video/webm", "webm") : new(MediaKind.Video, "video/x-matroska", "mkv");
        }
        if (head.StartsWith("fLaC"u8))
        {
            return new(MediaKind.Audio, "audio/flac", "flac");
        }
        if (head.StartsWith("OggS"u8))
        {
            return head.IndexOf("theora"u8) >= 0 ? new(MediaKind.Video, "video/ogg", "ogv") : new(MediaKind.Audio, "audio/ogg", "ogg");
        }
        if (head.StartsWith("ID3"u8) || (head.Length >= 2 && head[0] == 0xFF && (head[1] & 0xE0) == 0xE0 && (head[1] & 0x06) != 0))
        {
            return new(MediaKind.Audio, "audio/mpeg", "mp3");
        }
        if (head.StartsWith("%PDF-"u8))
        {
            return new(MediaKind.Document, "application/pdf", "pdf");
        }
        return null;
    }

    private static SniffedType? IsoBrand(ReadOnlySpan<byte> head)
    {
        var brand = Encoding.ASCII.GetString(head.Slice(8, 4));
        return brand switch
        {
            "heic" or "heix" or "hevc" or "hevx" or "heim" or "heis" or "mif1" or "msf1" => new(MediaKind.Image, "image/heic", "heic"),
            "avif" or "avis" => new(MediaKind.Image, "image/avif", "avif"),
            "qt  " => new(MediaKind.Video, "video/quicktime", "mov"),
            "M4A " or "M4B " => new(MediaKind.Audio, "audio/mp4", "m4a"),
            "isom" or "iso2" or "iso4" or "iso5" or "iso6" or "mp41" or "mp42" or "avc1" or "dash" or "M4V " or "MSNV" or "3gp4" or "3gp5" or "3g2a" => new(MediaKind.Video, "video/mp4", "mp4"),
            _ => null,
        };
    }
}

/// <summary>Client file names are kept for display only, cleaned of paths and control characters; never used as a path.</summary>
public static class FileNames
{
    public static string? Sanitize(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return null;
        }
        // Last path segment under either separator, so "../../etc/passwd" and "C:\x\y.jpg" keep only the name.
        var last = name.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
        var builder = new StringBuilder(last.Length);
        foreach (var c in last.Normalize(NormalizationForm.FormC))
        {
            if (!char.IsControl(c) && c is not ('"' or '<' or '>' or '|' or ':' or '*' or '?') && char.GetUnicodeCategory(c) != System.Globalization.UnicodeCategory.Format)
            {
                builder.Append(c);
            }
        }
        var clean = builder.ToString().Trim().TrimStart('.');
        if (clean.Length > 200)
        {
            clean = clean[..200];
        }
        return clean.Length == 0 ? null : clean;
    }
}
