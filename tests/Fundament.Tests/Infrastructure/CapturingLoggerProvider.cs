using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Fundament.Tests.Infrastructure;

/// <summary>Keeps the formatted messages of log categories starting with a prefix.</summary>
public sealed class CapturingLoggerProvider(string categoryPrefix, ConcurrentQueue<string> lines) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) =>
        categoryName.StartsWith(categoryPrefix, StringComparison.Ordinal) ? new Capturing(lines) : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    public void Dispose()
    {
    }

    private sealed class Capturing(ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (lines.Count < 100_000)
            {
                lines.Enqueue(formatter(state, exception));
            }
        }
    }
}
