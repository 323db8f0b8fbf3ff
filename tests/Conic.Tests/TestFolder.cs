using System.Diagnostics;

namespace Conic.Tests;

/// <summary>
/// Fresh folders for one test run, all under conic-tests/{process id} in the temp folder. The run's folder is deleted
/// when the test process exits, if the test platform lets it exit on its own; folders of processes no longer running
/// are deleted when the next run starts. So repeated runs leave at most one run's folders on the disk, not one per
/// run (a full-width export test alone writes ~180 MB).
/// </summary>
static class TestFolder
{
    static readonly string Root = Path.Combine(Path.GetTempPath(), "conic-tests");
    static readonly Lazy<string> RunFolder = new(CreateRunFolder);

    public static string New()
    {
        string folder = Path.Combine(RunFolder.Value, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    static string CreateRunFolder()
    {
        Directory.CreateDirectory(Root);
        foreach (var stale in Directory.GetDirectories(Root).Where(folder => !IsRunning(Path.GetFileName(folder))))
            TryDelete(stale);
        string folder = Path.Combine(Root, Environment.ProcessId.ToString());
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(folder);
        return folder;
    }

    static bool IsRunning(string folderName)
    {
        if (!int.TryParse(folderName, out int processId)) return false;
        try
        {
            using var process = Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    // Another run may be deleting the same stale folder; what one run cannot delete, the next one will.
    static void TryDelete(string folder)
    {
        try { Directory.Delete(folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
