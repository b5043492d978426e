using System.Diagnostics;

namespace Fundament.Tests.Infrastructure;

/// <summary>Starts a .NET program of the build (the server, a sample, the test upstream) as a real child process.</summary>
public static class ChildProcess
{
    /// <summary>
    /// Runs <c>dotnet <paramref name="dll"/> <paramref name="args"/></c> with <paramref name="environment"/>
    /// added. Its output goes to <paramref name="onOutput"/> line by line, or is dropped; it is always
    /// drained, since a full pipe would stall the process.
    /// </summary>
    public static Process StartDotnet(string dll, IEnumerable<KeyValuePair<string, string>> environment, IEnumerable<string> args,
        string? workingDirectory = null, Action<string>? onOutput = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                onOutput?.Invoke(line);
            }
        };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
