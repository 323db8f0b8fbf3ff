namespace Conic.Data;

/// <summary>
/// Resolves <c>--data PATH</c>: a folder of IDX files (MNIST/Fashion-MNIST names, plain or .gz), a folder with
/// <c>train/</c> and <c>test/</c> image folders, or one image folder (train only). No path means Fashion-MNIST from
/// Debian's <c>dataset-fashion-mnist</c> package.
/// </summary>
public static class DatasetLoader
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts Fashion-MNIST: the default training data.</summary>
    public const string DefaultFashionMnist = "/usr/share/datasets/fashion-mnist";
    /// <summary>Side of the square images made from image folders (IDX files keep their size).</summary>
    public const int DefaultImageSize = 32;

    /// <param name="log">Where image folders report their scanning progress; null for silence.</param>
    /// <param name="onBadImage">What an unreadable file in an image folder does (see <see cref="BadImagePolicy"/>).</param>
    /// <param name="workers">Threads that decode images of image folders for a batch; 0 = one per core.</param>
    public static DatasetSplits Load(string? path, int imageSize = DefaultImageSize, TextWriter? log = null,
                                     BadImagePolicy onBadImage = BadImagePolicy.Skip, int workers = 0)
    {
        if (string.IsNullOrEmpty(path))
        {
            if (!Directory.Exists(DefaultFashionMnist))
                throw new ConicException(
                    $"{DefaultFashionMnist}: Fashion-MNIST not found; install it with 'apt-get install dataset-fashion-mnist' or pass --data PATH");
            path = DefaultFashionMnist;
        }
        if (ImageCache.IsCache(path)) return new DatasetSplits(ImageCache.Open(path, imageSize, workers), null);
        if (File.Exists(path))
            throw new ConicException($"{path}: --data takes a folder (of IDX files, of images or of caches) or a Conic image cache, not this file");
        if (!Directory.Exists(path))
            throw new ConicException($"{path}: no such folder (--data)");

        string? trainImages = FindIdx(path, "train-images-idx3-ubyte");
        if (trainImages != null)
        {
            var idx = LoadIdx(path, trainImages);
            // Only a size other than the default and the files' own is a request that cannot be met.
            return imageSize == DefaultImageSize || imageSize == idx.Train.Height ? idx
                : idx with { Notes = [$"--image-size {imageSize} is ignored: IDX images keep their {idx.Train.Height}x{idx.Train.Width} px"] };
        }

        string trainCache = Path.Combine(path, "train" + ImageCache.Extension), testCache = Path.Combine(path, "test" + ImageCache.Extension);
        if (File.Exists(trainCache))
            return new DatasetSplits(ImageCache.Open(trainCache, imageSize, workers), File.Exists(testCache) ? ImageCache.Open(testCache, imageSize, workers) : null);

        string trainFolder = Path.Combine(path, "train"), testFolder = Path.Combine(path, "test");
        if (Directory.Exists(trainFolder) && Directory.Exists(testFolder))
        {
            // Test labels are numbered by the training classes' names, so that the splits agree on what label 3 means.
            var train = ImageFolderReader.Read(trainFolder, imageSize, log: log, onBadImage: onBadImage, workers: workers);
            var test = ImageFolderReader.Read(testFolder, imageSize, train.ClassNames, log, onBadImage, workers);
            var absent = train.ClassNames?.Where((_, c) => test.Labels != null && !test.Labels.Contains(c)).ToArray() ?? [];
            var matching = absent.Length == 0 ? [] : new[] { $"{testFolder}: no test images of class {string.Join(", ", absent)}; accuracy covers the other classes" };
            return new DatasetSplits(train, test) { Notes = [.. train.Notes, .. test.Notes, .. matching] };
        }
        if (ImageFolderReader.ContainsImages(path))
        {
            var images = ImageFolderReader.Read(path, imageSize, log: log, onBadImage: onBadImage, workers: workers);
            return new DatasetSplits(images, null) { Notes = images.Notes };
        }
        throw new ConicException($"{path}: neither IDX files (train-images-idx3-ubyte[.gz]) nor PNG/JPEG images found");
    }

    /// <summary>Fashion-MNIST's class names, in label order (Xiao et al. 2017).</summary>
    static readonly string[] FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Names of IDX labels shown in reports: <c>classes.txt</c> beside the files (one per line, in label order), else Fashion-MNIST's for Debian's copy.</summary>
    public const string ClassNamesFile = "classes.txt";

    static DatasetSplits LoadIdx(string folder, string trainImagesPath)
    {
        string namesPath = Path.Combine(folder, ClassNamesFile);
        string[]? classNames = File.Exists(namesPath) ? File.ReadAllLines(namesPath).Where(l => l.Trim().Length > 0).Select(l => l.Trim()).ToArray()
            : Path.GetFullPath(folder).TrimEnd('/') == DefaultFashionMnist ? FashionMnistClasses : null;
        var train = ReadIdxSplit(folder, trainImagesPath, "train-labels-idx1-ubyte", classNames);
        string? testImages = FindIdx(folder, "t10k-images-idx3-ubyte");
        var test = testImages == null ? null : ReadIdxSplit(folder, testImages, "t10k-labels-idx1-ubyte", classNames);
        foreach (var split in new[] { train, test })
            if (classNames != null && split?.Labels is { Length: > 0 } labels && labels.Max() >= classNames.Length)
                throw new ConicException($"{namesPath}: {classNames.Length} class names, but {split.Source} has label {labels.Max()}");
        return new DatasetSplits(train, test);
    }

    static ImageDataset ReadIdxSplit(string folder, string imagesPath, string labelsName, IReadOnlyList<string>? classNames)
    {
        var (pixels, count, height, width) = IdxReader.ReadImages(imagesPath);
        string? labelsPath = FindIdx(folder, labelsName);
        int[]? labels = labelsPath == null ? null : IdxReader.ReadLabels(labelsPath);
        if (labels != null && labels.Length != count)
            throw new ConicException($"{labelsPath}: {labels.Length} labels but {imagesPath} has {count} images");
        return new ImageDataset(pixels, count, 1, height, width, labels, imagesPath, classNames: labels == null ? null : classNames);
    }

    static string? FindIdx(string folder, string name) =>
        new[] { name, name + ".gz" }.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists);
}
