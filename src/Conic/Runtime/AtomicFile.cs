namespace Conic.Runtime;

/// <summary>
/// Writes a file through a temporary file that is flushed to disk and then renamed over the target, so a run killed
/// at any moment leaves either the previous file or the new one, never a torn one.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through a temporary file that is flushed to disk and renamed over it: a reader, or a kill, sees the old file or the new one, never half of one.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        // One temporary name per process, so that two processes writing the same file cannot tear each other's.
        string temporary = $"{path}.{Environment.ProcessId}{TemporarySuffix}";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            // A full disk must not stay full of our half-written file: the old file is intact, the new one is gone.
            File.Delete(temporary);
            throw;
        }
    }

    const string TemporarySuffix = ".tmp";

    /// <summary>Deletes temporary files a killed writer left in <paramref name="folder"/>; call only while holding its <see cref="RunLock"/>.</summary>
    public static void RemoveLeftovers(string folder)
    {
        foreach (string file in Directory.EnumerateFiles(folder, "*" + TemporarySuffix))
            if (System.Text.RegularExpressions.Regex.IsMatch(Path.GetFileName(file), @"\.\d+\.tmp$")) File.Delete(file);
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8, atomically (see <see cref="Write"/>).</summary>
    public static void WriteText(string path, string text) => Write(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(text)));
}
