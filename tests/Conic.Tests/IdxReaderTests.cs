using Conic.Data;

namespace Conic.Tests;

public class IdxReaderTests
{
    static string TempFile(string name) => Path.Combine(TestFolder.New(), name);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReadsImagesAndLabelsPlainOrGzipped(bool gzip)
    {
        string images = TempFile(gzip ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte");
        var pixels = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)i).ToArray();
        SyntheticData.WriteIdx(images, new[] { 2, 3, 4 }, pixels, gzip);
        var (read, count, height, width) = IdxReader.ReadImages(images);
        Assert.Equal((2, 3, 4), (count, height, width));
        Assert.Equal(pixels, read);

        string labels = TempFile("labels");
        SyntheticData.WriteIdx(labels, new[] { 3 }, new byte[] { 7, 0, 9 }, gzip: false);
        Assert.Equal(new[] { 7, 0, 9 }, IdxReader.ReadLabels(labels));
    }

    [Fact]
    public void TruncatedDataNamesTheFileAndTheShortfall()
    {
        string path = TempFile("train-images-idx3-ubyte");
        SyntheticData.WriteIdx(path, new[] { 10, 28, 28 }, new byte[100], gzip: false);
        var error = Assert.Throws<ConicException>(() => IdxReader.ReadImages(path));
        Assert.StartsWith(path + ": truncated IDX data (100 of 7840 bytes", error.Message);
    }

    [Fact]
    public void TruncatedHeaderIsReported()
    {
        string path = TempFile("short");
        File.WriteAllBytes(path, new byte[] { 0, 0, 8, 3, 0, 0 });
        var error = Assert.Throws<ConicException>(() => IdxReader.ReadImages(path));
        Assert.Contains("truncated IDX header", error.Message);
    }

    [Fact]
    public void WrongMagicIsReported()
    {
        string path = TempFile("labels-as-images");
        SyntheticData.WriteIdx(path, new[] { 4 }, new byte[4], gzip: false);
        var error = Assert.Throws<ConicException>(() => IdxReader.ReadImages(path));
        Assert.Equal($"{path}: wrong IDX magic 0x00000801, expected 0x00000803 (unsigned bytes, 3 dimensions)", error.Message);
    }

    [Fact]
    public void CorruptGzipIsReported()
    {
        string path = TempFile("x.gz");
        File.WriteAllBytes(path, new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 });
        var error = Assert.Throws<ConicException>(() => IdxReader.ReadImages(path));
        Assert.StartsWith(path + ": ", error.Message);
    }

    [Fact]
    public void DatasetLoaderFindsBothSplitsAndRejectsMismatchedLabels()
    {
        string folder = SyntheticData.WriteIdx(trainCount: 12, testCount: 8, size: 10, classes: 3);
        var splits = DatasetLoader.Load(folder);
        Assert.Equal(12, splits.Train.Count);
        Assert.Equal(8, splits.Test!.Count);
        Assert.Equal(3, splits.Train.ClassCount);

        SyntheticData.WriteIdx(Path.Combine(folder, "train-labels-idx1-ubyte.gz"), new[] { 5 }, new byte[5]);
        var error = Assert.Throws<ConicException>(() => DatasetLoader.Load(folder));
        Assert.Contains("5 labels but", error.Message);
    }

    [Fact]
    public void MissingDataFolderIsOneClearLine()
    {
        var error = Assert.Throws<ConicException>(() => DatasetLoader.Load("/no/such/folder"));
        Assert.Equal("/no/such/folder: no such folder (--data)", error.Message);
    }

    [Fact]
    public void ClassNamesOfIdxDataComeFromClassesTxt()
    {
        string data = SyntheticData.WriteIdx(trainCount: 8, testCount: 4, classes: 4);
        Assert.Null(DatasetLoader.Load(data).Train.ClassNames);
        File.WriteAllLines(Path.Combine(data, DatasetLoader.ClassNamesFile), ["stripes", "bars", "checks", "diagonals"]);
        var splits = DatasetLoader.Load(data);
        Assert.Equal(new[] { "stripes", "bars", "checks", "diagonals" }, splits.Train.ClassNames);
        Assert.Equal(splits.Train.ClassNames, splits.Test!.ClassNames);

        File.WriteAllLines(Path.Combine(data, DatasetLoader.ClassNamesFile), ["stripes", "bars"]);
        var error = Assert.Throws<ConicException>(() => DatasetLoader.Load(data));
        Assert.Contains("classes.txt: 2 class names, but", error.Message);
    }
}
