namespace Conic.Runtime;

/// <summary>Peak resident memory of this process (Linux /proc), resettable so that consecutive runs are measured apart.</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size in bytes since start or the last <see cref="ResetPeak"/>; null where /proc is absent.</summary>
    public static long? PeakResidentBytes() => StatusBytes("VmHWM:");

    /// <summary>Current resident set size in bytes; null where /proc is absent.</summary>
    public static long? ResidentBytes() => StatusBytes("VmRSS:");

    static long? StatusBytes(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return null;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
        if (line == null) return null;
        var kilobytes = long.Parse(line[field.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        return kilobytes * 1024;
    }

    /// <summary>Resets the peak to the current resident size (writing 5 to /proc/self/clear_refs); false where unsupported.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
