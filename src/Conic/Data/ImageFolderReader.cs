namespace Conic.Data;

/// <summary>
/// Reads a folder of PNG/JPEG images of any size as a streamed <see cref="ImageDataset"/>: the folder is scanned and
/// every file's header checked (size, colours, a truncated end), and images are decoded only when used. Labels come
/// from a <c>labels.csv</c> (<c>file,label</c> rows, file relative to the folder) or, when every image sits in a
/// first-level subfolder, from the subfolder names (the ImageFolder convention); otherwise the images are
/// unlabelled. Grayscale when every image is. Symbolic links are followed, each folder once (a link back up the tree
/// is not a loop of copies). Unreadable files are left out with a counted note, or stop the run
/// (<see cref="BadImagePolicy"/>).
/// </summary>
public static class ImageFolderReader
{
    static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif" };

    /// <summary>The optional label file at the folder's root.</summary>
    public const string LabelsFile = "labels.csv";

    /// <summary>Whether <paramref name="folder"/> holds an image file at any depth.</summary>
    public static bool ContainsImages(string folder) => ImageFiles(folder).Any();

    /// <summary>
    /// Scans every image under <paramref name="folder"/>. With <paramref name="classNames"/> (a test split read after
    /// its train split) labels are numbered by those names, and a class not among them is an error.
    /// </summary>
    /// <param name="log">Where counts and a progress line per tenth of the scan go (large folders take a while).</param>
    /// <param name="workers">Threads that decode images for a batch; 0 = one per core.</param>
    public static ImageDataset Read(string folder, int imageSize, IReadOnlyList<string>? classNames = null, TextWriter? log = null,
                                    BadImagePolicy onBadImage = BadImagePolicy.Skip, int workers = 0)
    {
        if (imageSize < 8) throw new ConicException($"image size {imageSize} is too small (at least 8 px)");
        Runtime.MemoryEstimate.CheckImageSide(imageSize);
        var files = ImageFiles(folder).Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new ConicException($"{folder}: no PNG or JPEG images found");
        log?.WriteLine($"{folder}: {files.Length} images found; checking their headers");

        var probes = new ImageProbe[files.Length];
        int done = 0, step = Math.Max(1, files.Length / 10);
        Parallel.For(0, files.Length, i =>
        {
            probes[i] = ImageDecoder.Probe(files[i]);
            int finished = Interlocked.Increment(ref done);
            if (log != null && finished % step == 0 && finished < files.Length) lock (log) log.WriteLine($"checked {finished}/{files.Length} images");
        });
        var bad = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        for (int i = 0; i < files.Length; i++)
        {
            if (probes[i].Problem is not string problem) continue;
            if (onBadImage == BadImagePolicy.Fail) throw new ConicException($"{files[i]}: {problem}");
            bad[files[i]] = problem;
        }
        if (bad.Count == files.Length)
            throw new ConicException($"{folder}: none of its {files.Length} images is readable (e.g. {files[0]}: {probes[0].Problem})");
        var notes = bad.IsEmpty ? new List<string>() :
        [
            $"{bad.Count} unreadable image{(bad.Count == 1 ? "" : "s")} left out of {folder}: " +
            string.Join(", ", bad.Keys.Order(StringComparer.Ordinal).Take(10).Select(f => $"{Path.GetRelativePath(folder, f)} ({bad[f]})")) +
            (bad.Count > 10 ? ", ..." : ""),
        ];
        var kept = Enumerable.Range(0, files.Length).Where(i => probes[i].Problem == null).ToArray();
        files = kept.Select(i => files[i]).ToArray();
        string[] names = files.Select(f => Path.GetRelativePath(folder, f)).ToArray();

        var (labels, classes) = Labels(folder, names, classNames, notes);
        int channels = kept.All(i => probes[i].Gray) ? 1 : 3;
        var source = new FileSource(files, kept.Select(i => (probes[i].Width, probes[i].Height)).ToArray());
        var streamed = new StreamedFiles(source, Enumerable.Range(0, files.Length).ToArray(), workers, onBadImage, bad);
        return new ImageDataset(streamed, channels, imageSize, labels, folder, names, classes) { Notes = notes };
    }

    /// <summary>Labels from labels.csv, else from first-level subfolders when every image has one, else none.</summary>
    /// <param name="notes">Gets a line when labels.csv names files that are not images of the folder.</param>
    static (int[]? Labels, IReadOnlyList<string>? Classes) Labels(string folder, string[] names, IReadOnlyList<string>? classNames, List<string> notes)
    {
        string csv = Path.Combine(folder, LabelsFile);
        string?[] given;
        if (File.Exists(csv))
        {
            var byFile = ReadLabelsCsv(csv);
            given = names.Select(n => byFile.GetValueOrDefault(n)).ToArray();
            int missing = given.Count(g => g == null);
            if (missing > 0)
                throw new ConicException($"{csv}: no label for {missing} image{(missing == 1 ? "" : "s")} (e.g. {names[Array.IndexOf(given, null)]})");
            var known = names.ToHashSet(StringComparer.Ordinal);
            var strangers = byFile.Keys.Where(f => !known.Contains(f)).Order(StringComparer.Ordinal).ToArray();
            if (strangers.Length > 0)
                notes.Add($"{csv}: {strangers.Length} row{(strangers.Length == 1 ? " names a file" : "s name files")} that {(strangers.Length == 1 ? "is" : "are")} " +
                          $"not a readable image of the folder, ignored (e.g. {strangers[0]})");
        }
        else
        {
            given = names.Select(FirstFolder).ToArray();
            if (given.Any(g => g == null)) return (null, null);
        }
        if (classNames != null)
        {
            var unknown = given.Distinct().Where(t => !classNames.Contains(t!)).ToArray();
            if (unknown.Length > 0)
                throw new ConicException($"{folder}: class '{unknown[0]}' is not among the training classes ({string.Join(", ", classNames)})");
        }
        var classes = classNames ?? given.Select(t => t!).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = classes.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i);
        return (given.Select(t => index[t!]).ToArray(), classes);
    }

    /// <summary>
    /// The <c>file,label</c> rows of a labels.csv, as CSV (quoted fields may hold commas; an optional header row), by
    /// file path. A row that is not two fields, an empty label and one file given two labels are errors naming the row;
    /// the same row twice is harmless.
    /// </summary>
    static Dictionary<string, string> ReadLabelsCsv(string csv)
    {
        var byFile = new Dictionary<string, string>(StringComparer.Ordinal);
        var firstLine = new Dictionary<string, long>(StringComparer.Ordinal);
        // The BCL's CSV reader (quotes, escaped quotes): no package needed for two columns.
        using var parser = new Microsoft.VisualBasic.FileIO.TextFieldParser(csv) { TextFieldType = Microsoft.VisualBasic.FileIO.FieldType.Delimited, TrimWhiteSpace = true };
        parser.SetDelimiters(",");
        while (!parser.EndOfData)
        {
            long line = parser.LineNumber;
            string[]? fields;
            try
            {
                fields = parser.ReadFields();
            }
            catch (Microsoft.VisualBasic.FileIO.MalformedLineException e)
            {
                throw new ConicException($"{csv}: line {e.LineNumber} is not valid CSV ('file,label', quotes paired)");
            }
            if (fields == null || fields.All(f => f.Length == 0)) continue;
            if (line == 1 && fields is ["file", "label"]) continue;
            if (fields.Length != 2 || fields[0].Length == 0)
                throw new ConicException($"{csv}: line {line} is not 'file,label' (quote a file name that holds a comma)");
            if (fields[1].Length == 0) throw new ConicException($"{csv}: line {line} gives {fields[0]} an empty label");
            string file = fields[0].Replace('/', Path.DirectorySeparatorChar);
            if (byFile.TryGetValue(file, out string? earlier) && earlier != fields[1])
                throw new ConicException($"{csv}: line {line} labels {fields[0]} '{fields[1]}', line {firstLine[file]} labelled it '{earlier}'; give each file one label");
            byFile[file] = fields[1];
            firstLine.TryAdd(file, line);
        }
        return byFile;
    }

    /// <summary>
    /// Image files under <paramref name="folder"/>, entering each real folder once: the tree without links first, then
    /// the folders that symbolic links lead to and that were not reached already (so a link to a sibling class does
    /// not relabel its images, and a link to an ancestor ends).
    /// </summary>
    static IEnumerable<string> ImageFiles(string folder)
    {
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var links = new Queue<string>();
        var pending = new Stack<string>([folder]);
        while (true)
        {
            while (pending.Count > 0)
            {
                string current = pending.Pop();
                if (!visited.Add(RealPath(current))) continue;
                foreach (string file in Directory.EnumerateFiles(current).Where(IsImage)) yield return file;
                foreach (string sub in Directory.EnumerateDirectories(current))
                    if (new DirectoryInfo(sub).LinkTarget != null) links.Enqueue(sub); else pending.Push(sub);
            }
            if (!links.TryDequeue(out var link)) yield break;
            pending.Push(link);
        }
    }

    /// <summary>The folder's path with every symbolic link resolved (libc realpath; the full path where there is none).</summary>
    static string RealPath(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            // realpath writes into a buffer of ours: a buffer it allocated would have to be freed by the same malloc,
            // and under a preloaded allocator (./conic's tcmalloc) libc's own free is not that one.
            IntPtr buffer = System.Runtime.InteropServices.Marshal.AllocHGlobal(PathMax);
            try
            {
                if (NativeMethods.realpath(path, buffer) != IntPtr.Zero)
                    return System.Runtime.InteropServices.Marshal.PtrToStringUTF8(buffer)!;
            }
            finally
            {
                System.Runtime.InteropServices.Marshal.FreeHGlobal(buffer);
            }
        }
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
    }

    /// <summary>Linux's PATH_MAX, the size realpath may write.</summary>
    const int PathMax = 4096;

    static class NativeMethods
    {
        [System.Runtime.InteropServices.DllImport("libc", CharSet = System.Runtime.InteropServices.CharSet.Ansi)]
        public static extern IntPtr realpath(string path, IntPtr resolved);
    }

    static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path));

    static string? FirstFolder(string relative)
    {
        int separator = relative.IndexOf(Path.DirectorySeparatorChar);
        return separator < 0 ? null : relative[..separator];
    }
}
