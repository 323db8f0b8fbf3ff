namespace Conic.Data;

/// <summary>
/// Resolves <c>--data PATH</c>: a folder of IDX files (MNIST/Fashion-MNIST names, plain or .gz), a folder with
/// <c>train/</c> and <c>test/</c> image folders, or one image folder (train only). No path means Fashion-MNIST from
/// Debian's <c>dataset-fashion-mnist</c> package.
/// </summary>
public static class DatasetLoader
{
    public const string DefaultFashionMnist = "/usr/share/datasets/fashion-mnist";
    /// <summary>Side of the square images made from image folders (IDX files keep their size).</summary>
    public const int DefaultImageSize = 32;

    public static DatasetSplits Load(string? path, int imageSize = DefaultImageSize)
    {
        if (string.IsNullOrEmpty(path))
        {
            if (!Directory.Exists(DefaultFashionMnist))
                throw new ConicException(
                    $"{DefaultFashionMnist}: Fashion-MNIST not found; install it with 'apt-get install dataset-fashion-mnist' or pass --data PATH");
            path = DefaultFashionMnist;
        }
        if (File.Exists(path))
            throw new ConicException($"{path}: --data takes a folder (of IDX files or of images), not a file");
        if (!Directory.Exists(path))
            throw new ConicException($"{path}: no such folder (--data)");

        string? trainImages = FindIdx(path, "train-images-idx3-ubyte");
        if (trainImages != null)
        {
            var idx = LoadIdx(path, trainImages);
            return imageSize == DefaultImageSize ? idx
                : idx with { Notes = [$"--image-size {imageSize} is ignored: IDX images keep their {idx.Train.Height}x{idx.Train.Width} px"] };
        }

        string trainFolder = Path.Combine(path, "train"), testFolder = Path.Combine(path, "test");
        if (Directory.Exists(trainFolder) && Directory.Exists(testFolder))
        {
            // Test labels are numbered by the training classes' names, so that the splits agree on what label 3 means.
            var train = ImageFolderReader.Read(trainFolder, imageSize);
            var test = ImageFolderReader.Read(testFolder, imageSize, train.ClassNames);
            var absent = train.ClassNames?.Where((_, c) => test.Labels != null && !test.Labels.Contains(c)).ToArray() ?? [];
            var matching = absent.Length == 0 ? [] : new[] { $"{testFolder}: no test images of class {string.Join(", ", absent)}; accuracy covers the other classes" };
            return new DatasetSplits(train, test) { Notes = [.. train.Notes, .. test.Notes, .. matching] };
        }
        if (ImageFolderReader.ContainsImages(path))
        {
            var images = ImageFolderReader.Read(path, imageSize);
            return new DatasetSplits(images, null) { Notes = images.Notes };
        }
        throw new ConicException($"{path}: neither IDX files (train-images-idx3-ubyte[.gz]) nor PNG/JPEG images found");
    }

    static DatasetSplits LoadIdx(string folder, string trainImagesPath)
    {
        var train = ReadIdxSplit(folder, trainImagesPath, "train-labels-idx1-ubyte");
        string? testImages = FindIdx(folder, "t10k-images-idx3-ubyte");
        var test = testImages == null ? null : ReadIdxSplit(folder, testImages, "t10k-labels-idx1-ubyte");
        return new DatasetSplits(train, test);
    }

    static ImageDataset ReadIdxSplit(string folder, string imagesPath, string labelsName)
    {
        var (pixels, count, height, width) = IdxReader.ReadImages(imagesPath);
        string? labelsPath = FindIdx(folder, labelsName);
        int[]? labels = labelsPath == null ? null : IdxReader.ReadLabels(labelsPath);
        if (labels != null && labels.Length != count)
            throw new ConicException($"{labelsPath}: {labels.Length} labels but {imagesPath} has {count} images");
        return new ImageDataset(pixels, count, 1, height, width, labels, imagesPath);
    }

    static string? FindIdx(string folder, string name) =>
        new[] { name, name + ".gz" }.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists);
}
