namespace Conic.Tests;

/// <summary>The processes of this machine working on a run folder, found by their command lines.</summary>
static class RunProcesses
{
    /// <summary>Ids of the processes whose command line names <paramref name="run"/> (commands, reruns, MPI ranks, mpirun).</summary>
    public static int[] Of(string run)
    {
        var found = new List<int>();
        foreach (string folder in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out int pid)) continue;
            try
            {
                string commandLine = File.ReadAllText(Path.Combine(folder, "cmdline")).Replace('\0', ' ');
                if (commandLine.Contains(run, StringComparison.Ordinal)) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended while it was read.
            }
        }
        return [.. found];
    }

    /// <summary>Waits until no process names <paramref name="run"/>; false when some still do after <paramref name="timeout"/>.</summary>
    public static bool EndWithin(string run, TimeSpan timeout)
    {
        var started = DateTime.UtcNow;
        while (Of(run).Length > 0)
        {
            if (DateTime.UtcNow - started > timeout) return false;
            Thread.Sleep(50);
        }
        return true;
    }
}
