namespace Conic.Runtime;

/// <summary>
/// One writer per run folder: an exclusive lock on <c>run.lock</c> in the folder, which holds the writer's PID (for
/// people: `cat` reads it; .NET cannot while the lock is held). The lock is
/// the operating system's (flock, which .NET takes for FileShare.None), so it ends with the process however it ends:
/// a lock file left by a killed run is stale and is simply taken over. Re-entrant within a process (pretrain, then
/// evaluate and report, in one command).
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file's name in the run folder.</summary>
    public const string FileName = "run.lock";
    static readonly Dictionary<string, (FileStream Stream, int Holders, Func<bool>? RemoveOnRelease)> Held = new();
    readonly string _key;
    bool _released;

    RunLock(string key) => _key = key;

    /// <summary>
    /// Takes the folder's lock (creating the folder), or fails with a one-line error saying that another process holds it
    /// or saying that the folder cannot be written. Temporary files there are a dead writer's and are removed.
    /// </summary>
    /// <param name="removeIfCreatedAndEmpty">
    /// When this call creates the folder: asked as the last holder lets go, whether the folder still holds nothing worth
    /// keeping; then it is removed, so a run that fails at its start leaves no half-made folder.
    /// </param>
    public static RunLock Acquire(string runDirectory, bool create = true, Func<bool>? removeIfCreatedAndEmpty = null)
    {
        if (string.IsNullOrWhiteSpace(runDirectory)) throw new ConicException("--run: the run folder name is empty");
        if (!create && !Directory.Exists(runDirectory)) throw new ConicException($"{runDirectory}: no such run folder");
        try
        {
            return TryAcquire(runDirectory, Directory.Exists(runDirectory) ? null : removeIfCreatedAndEmpty);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ConicException($"{runDirectory}: cannot write to this run folder ({e.Message})");
        }
    }

    static RunLock TryAcquire(string runDirectory, Func<bool>? removeOnRelease)
    {
        Directory.CreateDirectory(runDirectory);
        string path = Path.GetFullPath(Path.Combine(runDirectory, FileName));
        lock (Held)
        {
            if (Held.TryGetValue(path, out var held))
            {
                Held[path] = (held.Stream, held.Holders + 1, held.RemoveOnRelease);
                return new RunLock(path);
            }
            FileStream stream;
            try
            {
                stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (CanCreateFiles(runDirectory))
            {
                throw new ConicException($"{runDirectory}: another Conic process is writing this run folder (its PID is in {FileName}); wait for it or choose another --run");
            }
            catch (IOException e)
            {
                throw new ConicException($"{runDirectory}: cannot write to this run folder ({e.Message.Trim()})");
            }
            stream.SetLength(0);
            stream.Write(System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId}\n"));
            stream.Flush();
            Held[path] = (stream, 1, removeOnRelease);
            AtomicFile.RemoveLeftovers(runDirectory);
            return new RunLock(path);
        }
    }

    /// <summary>Whether a new file can be made in the folder: then a failed open of the lock file means another holder.</summary>
    static bool CanCreateFiles(string folder)
    {
        try
        {
            using var probe = new FileStream(Path.Combine(folder, $".write-probe.{Environment.ProcessId}.tmp"), FileMode.Create,
                                             FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Releases the lock (the last holder in this process closes the file).</summary>
    public void Dispose()
    {
        if (_released) return;
        _released = true;
        lock (Held)
        {
            var (stream, holders, removeOnRelease) = Held[_key];
            if (holders > 1)
            {
                Held[_key] = (stream, holders - 1, removeOnRelease);
                return;
            }
            Held.Remove(_key);
            stream.Dispose();
            string folder = Path.GetDirectoryName(_key)!;
            if (removeOnRelease?.Invoke() == true)
            {
                try { Directory.Delete(folder, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* left for the user; the run's error matters more */ }
            }
        }
    }
}
