using System.Diagnostics;
using System.Text;

namespace Fundament.Media.Processing;

/// <summary>
/// Runs ffprobe, ffmpeg, pdfinfo and pdftoppm with a wall-clock limit (the process tree is killed
/// when it runs out) and, where <c>prlimit</c> exists, an address-space limit, so a hostile file
/// cannot hang or exhaust the worker. Arguments are passed as a list, never through a shell.
/// </summary>
internal static class ExternalTool
{
    private static readonly string? Prlimit = Find("prlimit");

    public static string? Find(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(Path.PathSeparator))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    public static bool Available(string name) => Find(name) is not null;

    /// <summary>Runs the tool; throws <see cref="MediaRejectedException"/> when it fails, times out or is not installed.</summary>
    public static async Task<string> RunAsync(string tool, IEnumerable<string> arguments, TimeSpan timeout, long memoryBytes, CancellationToken cancellationToken)
    {
        var path = Find(tool) ?? throw new ToolMissingException(tool);
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        if (Prlimit is not null)
        {
            start.FileName = Prlimit;
            start.ArgumentList.Add($"--as={memoryBytes}");
            start.ArgumentList.Add("--");
            start.ArgumentList.Add(path);
        }
        else
        {
            start.FileName = path;
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start) ?? throw new ToolMissingException(tool);
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            cancellationToken.ThrowIfCancellationRequested();
            throw new MediaRejectedException($"{tool} did not finish within {timeout.TotalSeconds:0}s");
        }
        var output = await stdout;
        var errors = (await stderr).Trim();
        if (process.ExitCode != 0)
        {
            var first = errors.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? $"exit code {process.ExitCode}";
            throw new MediaRejectedException($"{tool} could not read the file: {(first.Length > 300 ? first[..300] : first)}");
        }
        return output;
    }
}

/// <summary>The file is not a valid, processable file of its type: the asset fails with this reason, no retry.</summary>
public sealed class MediaRejectedException(string reason) : Exception(reason);

/// <summary>A tool this process needs is not installed: a deployment problem, retried with back-off.</summary>
public sealed class ToolMissingException(string tool) : Exception($"{tool} is not installed on this worker");
