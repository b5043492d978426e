using Microsoft.Extensions.Hosting;

namespace Fundament.Identity.Tokens;

/// <summary>Reloads the key set and rotates on schedule, every <see cref="SigningKeyStore.RefreshInterval"/>.</summary>
internal sealed partial class SigningKeyRotationService(SigningKeyStore keys, TimeProvider time, ILogger<SigningKeyRotationService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(SigningKeyStore.RefreshInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await keys.RotateIfDueAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Signing continues with the keys already loaded; the next tick tries again.
                LogFailed(logger, ex);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Signing key refresh or rotation failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
