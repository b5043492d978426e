// Usage: BareVips <photo-dir> <out-dir> <parallelism>
// Prints the seconds it took and the files per second.
using System.Diagnostics;
using NetVips;

var files = Directory.GetFiles(args[0], "*.jpg");
var output = args[1];
var parallelism = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
Directory.CreateDirectory(output);

// As Fundament's ImageProcessor: no operation cache, one libvips thread per pipeline, parallelism from running files side by side.
Cache.Max = 0;
Cache.MaxFiles = 0;
Cache.MaxMem = 0;
NetVips.NetVips.Concurrency = 1;

var clock = Stopwatch.StartNew();
await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, (file, _) =>
{
    var name = Path.GetFileNameWithoutExtension(file);
    using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
    using var big = Image.ThumbnailStream(stream, 1280, height: 1280, size: Enums.Size.Down, optionString: "fail_on=truncated");
    using var flat = big.CopyMemory();
    flat.Webpsave(Path.Combine(output, name + "-large.webp"), q: 80, keep: Enums.ForeignKeep.None, effort: 2);
    using var little = flat.ThumbnailImage(256, height: 256, size: Enums.Size.Down);
    little.Webpsave(Path.Combine(output, name + "-small.webp"), q: 80, keep: Enums.ForeignKeep.None, effort: 2);
    return ValueTask.CompletedTask;
});
var seconds = clock.Elapsed.TotalSeconds;
Console.WriteLine(FormattableString.Invariant($"{seconds:F2} {files.Length / seconds:F2}"));
