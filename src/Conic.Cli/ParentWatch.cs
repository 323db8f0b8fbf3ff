using System.Diagnostics;

/// <summary>
/// Ends this process when the conic process that started it is gone. A command rerun with oneDNN held to AVX2, or an
/// MPI rank of <c>--processes N</c>, would otherwise go on training after a <c>kill -9</c> of the command the user
/// started, holding the run's lock so that its <c>--resume</c> is refused.
/// </summary>
static class ParentWatch
{
    /// <summary>"pid:start time" of the process this one must not outlive (start time from /proc, so a reused pid is not mistaken for it).</summary>
    const string Variable = "CONIC_PARENT";

    /// <summary>Makes the process <paramref name="start"/> starts watch this one.</summary>
    public static void WatchedBy(ProcessStartInfo start) => start.Environment[Variable] = Identity(Environment.ProcessId);

    /// <summary>When this process was started by one that asked to be watched, kills this process soon after that one is gone.</summary>
    public static void StartIfAsked()
    {
        if (Environment.GetEnvironmentVariable(Variable) is not { Length: > 0 } parent ||
            !int.TryParse(parent.Split(':')[0], out int pid)) return;
        new Thread(() =>
        {
            while (Identity(pid) == parent) Thread.Sleep(250);
            Process.GetCurrentProcess().Kill();  // SIGKILL, as its parent had: nothing is written half (atomic writes)
        }) { IsBackground = true, Name = "parent-watch" }.Start();
    }

    /// <summary>"pid:start time" of a running process; null when it is gone or a zombie.</summary>
    static string? Identity(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        // Fields after the command name (which may hold spaces, so split after its closing parenthesis): state is the
        // first, the start time the 20th.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return fields[0] == "Z" ? null : $"{pid}:{fields[19]}";
    }
}
