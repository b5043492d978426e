namespace Fundament.Core.Hosting;

/// <summary>
/// A setting or environment problem that must stop the process at start-up. The message names the
/// setting and is printed as is, without a stack trace.
/// </summary>
public sealed class StartupException(string message) : Exception(message);
