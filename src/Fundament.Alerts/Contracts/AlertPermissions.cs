namespace Fundament.Alerts;

public static class AlertPermissions
{
    public const string Read = "alerts.read";
    public const string Write = "alerts.write";
}
