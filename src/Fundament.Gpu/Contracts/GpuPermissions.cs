namespace Fundament.Gpu;

public static class GpuPermissions
{
    public const string Read = "gpu.read";
    public const string Write = "gpu.write";
}
