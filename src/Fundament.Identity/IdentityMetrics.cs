using System.Diagnostics.Metrics;

namespace Fundament.Identity;

internal sealed class IdentityMetrics
{
    private readonly Counter<long> _logins;
    private readonly Counter<long> _lockouts;
    private readonly Counter<long> _refreshReuse;

    public IdentityMetrics(IMeterFactory meters)
    {
        var meter = meters.Create("Fundament.Identity");
        _logins = meter.CreateCounter<long>("fundament.identity.logins", "{login}", "Login attempts, by outcome.");
        _lockouts = meter.CreateCounter<long>("fundament.identity.lockouts", "{lockout}", "Usernames locked after repeated failures.");
        // Present at 0 from the start, so the first lockout is an increase Prometheus can see.
        _lockouts.Add(0);
        _refreshReuse = meter.CreateCounter<long>("fundament.identity.refresh_reuse", "{event}", "Rotated refresh tokens presented again (families revoked).");
    }

    public void Login(string outcome) => _logins.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void Lockout() => _lockouts.Add(1);

    public void RefreshReuse() => _refreshReuse.Add(1);
}
