using Conic.Data;

namespace Conic.Transfer;

/// <summary>What <see cref="SceneComposer"/> makes: scene counts, canvas side, objects per scene, object sizes.</summary>
public sealed record SceneOptions
{
    /// <summary>Training scenes to compose.</summary>
    public int TrainScenes { get; init; } = 2000;
    /// <summary>Validation scenes to compose.</summary>
    public int ValidationScenes { get; init; } = 500;
    /// <summary>Side of the square scenes in pixels.</summary>
    public int Side { get; init; } = 64;
    /// <summary>At most this many items per scene (at least one).</summary>
    public int MaxObjects { get; init; } = 4;
    /// <summary>Smallest and largest object side as fractions of the canvas side.</summary>
    public double MinScale { get; init; } = 0.3;
    /// <summary>The largest object side as a fraction of the canvas side (see <see cref="MinScale"/>).</summary>
    public double MaxScale { get; init; } = 0.6;
    /// <summary>Seed of the placement, the items and the backgrounds.</summary>
    public int Seed { get; init; }
}

/// <summary>
/// Composes a dense-transfer benchmark from a labelled image set (Fashion-MNIST): 1 to <see cref="SceneOptions.MaxObjects"/>
/// items, each scaled and placed at random without overlap on a textured background (two random gratings and noise),
/// written in the formats <c>conic finetune</c> reads: <c>SPLIT/images/*.png</c>, <c>SPLIT/masks/*.png</c> (class index
/// per pixel: 0 background, label + 1 for an item's pixels), <c>SPLIT/annotations.json</c> (COCO boxes, category id =
/// mask index) and <c>classes.txt</c>. Train scenes use the train split's items, val scenes the test split's.
/// </summary>
public static class SceneComposer
{
    /// <summary>Item pixels at least this bright (of 255) belong to the item; darker ones show the background.</summary>
    const byte ObjectThreshold = 40;

    /// <summary>Writes the benchmark into <paramref name="output"/> from the items of <paramref name="train"/> and <paramref name="test"/>.</summary>
    public static void Write(string output, ImageDataset train, ImageDataset test, SceneOptions options)
    {
        var names = new[] { "background" }.Concat(ItemClassNames(train, test)).ToArray();
        Directory.CreateDirectory(output);
        Runtime.AtomicFile.WriteText(Path.Combine(output, SegmentationDataset.ClassNamesFile), string.Join('\n', names) + "\n");
        var categories = names.Skip(1).Select((name, c) => new CocoCategory(c + 1, name)).ToArray();
        WriteSplit(Path.Combine(output, "train"), train, options.TrainScenes, options, new Random(options.Seed), categories);
        WriteSplit(Path.Combine(output, "val"), test, options.ValidationScenes, options, new Random(options.Seed + 1), categories);
    }

    /// <summary>
    /// The same composition with exactly one item per scene, written as an image-classification folder that
    /// <c>conic pretrain</c> and <c>conic eval</c> read: <c>OUTPUT/{train,test}/CLASS/scene-N.png</c>. The item varies in
    /// place and size on a textured background: a harder kind of image than the centred items it comes from, for
    /// checking that a recipe chosen on those holds on other images.
    /// </summary>
    public static void WriteClassification(string output, ImageDataset train, ImageDataset test, SceneOptions options)
    {
        var folders = ItemClassNames(train, test).Select(FolderName).ToArray();
        var single = options with { MaxObjects = 1 };
        foreach (var (split, items, count, seed) in new[] { ("train", train, options.TrainScenes, options.Seed), ("test", test, options.ValidationScenes, options.Seed + 1) })
        {
            var random = new Random(seed);
            // Redrawn until the item shows (an item darker than the threshold everywhere would be a scene without its label).
            var scenes = Enumerable.Range(0, count).Select(i =>
            {
                Scene scene;
                do scene = Compose(items, single, random, i); while (scene.Objects.Count == 0);
                return scene;
            }).ToArray();
            foreach (string folder in folders) Directory.CreateDirectory(Path.Combine(output, split, folder));
            Parallel.For(0, count, i => MaskReader.Write(Path.Combine(output, split, folders[scenes[i].Objects[0].CategoryId - 1], SceneName(i)),
                                                         scenes[i].Pixels, options.Side, options.Side));
        }
    }

    /// <summary>The items' class names (index = label), after checking the items can make scenes.</summary>
    static string[] ItemClassNames(ImageDataset train, ImageDataset test)
    {
        foreach (var split in new[] { train, test })
        {
            if (split.Labels == null) throw new ConicException($"{split.Source}: scenes need labelled images (the labels name the objects)");
            if (split.Channels != 1) throw new ConicException($"{split.Source}: scenes are composed of grayscale images, these have {split.Channels} channels");
        }
        int classCount = Math.Max(train.ClassCount, test.ClassCount);
        return Enumerable.Range(0, classCount).Select(c => train.ClassNames?[c] ?? $"class {c}").ToArray();
    }

    /// <summary>A class name as a folder name ("T-shirt/top" → "T-shirt-top").</summary>
    static string FolderName(string className) =>
        string.Concat(className.Select(ch => Path.GetInvalidFileNameChars().Contains(ch) || ch == '\\' ? '-' : ch));

    sealed record Scene(byte[] Pixels, byte[] Mask, List<CocoAnnotation> Objects);

    static void WriteSplit(string folder, ImageDataset items, int count, SceneOptions options, Random random, CocoCategory[] categories)
    {
        string images = Path.Combine(folder, "images"), masks = Path.Combine(folder, "masks");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(masks);
        // Scenes are drawn one after another from one generator (reproducible), then encoded in parallel.
        var scenes = Enumerable.Range(0, count).Select(i => Compose(items, options, random, i)).ToArray();
        int side = options.Side;
        Parallel.For(0, count, i =>
        {
            MaskReader.Write(Path.Combine(images, SceneName(i)), scenes[i].Pixels, side, side);
            MaskReader.Write(Path.Combine(masks, SceneName(i)), scenes[i].Mask, side, side);
        });
        var cocoImages = Enumerable.Range(0, count).Select(i => new CocoImage(i + 1, SceneName(i), side, side)).ToArray();
        long id = 1;
        var annotations = scenes.SelectMany(s => s.Objects).Select(a => a with { Id = id++ }).ToArray();
        new CocoFile(cocoImages, annotations, categories).Save(Path.Combine(folder, "annotations.json"));
    }

    static string SceneName(int index) => $"scene-{index:D5}.png";

    static Scene Compose(ImageDataset items, SceneOptions options, Random random, int index)
    {
        int side = options.Side;
        var pixels = Background(side, random);
        var mask = new byte[side * side];
        var placed = new List<(int X, int Y, int Size)>();
        var objects = new List<CocoAnnotation>();
        int wanted = random.Next(1, options.MaxObjects + 1);
        for (int attempt = 0; placed.Count < wanted && attempt < 50 * wanted; attempt++)
        {
            int size = (int)Math.Round(side * (options.MinScale + random.NextDouble() * (options.MaxScale - options.MinScale)));
            int x = random.Next(0, side - size + 1), y = random.Next(0, side - size + 1);
            if (placed.Any(p => x < p.X + p.Size && p.X < x + size && y < p.Y + p.Size && p.Y < y + size)) continue;
            int item = random.Next(items.Count);
            int category = items.Labels![item] + 1;
            var scaled = Scaled(items, item, size);
            int minX = side, minY = side, maxX = -1, maxY = -1, area = 0;
            for (int dy = 0; dy < size; dy++)
            for (int dx = 0; dx < size; dx++)
            {
                byte value = scaled[dy * size + dx];
                if (value < ObjectThreshold) continue;
                int at = (y + dy) * side + x + dx;
                pixels[at] = value;
                mask[at] = (byte)category;
                (minX, minY, maxX, maxY) = (Math.Min(minX, x + dx), Math.Min(minY, y + dy), Math.Max(maxX, x + dx), Math.Max(maxY, y + dy));
                area++;
            }
            placed.Add((x, y, size));
            if (area > 0)
                objects.Add(new CocoAnnotation(0, index + 1, category, [minX, minY, maxX - minX + 1, maxY - minY + 1], area, 0));
        }
        return new Scene(pixels, mask, objects);
    }

    /// <summary>Two gratings of random orientation and period plus noise, in 0..100 (items are brighter, up to 255).</summary>
    static byte[] Background(int side, Random random)
    {
        var pixels = new byte[side * side];
        var gratings = Enumerable.Range(0, 2).Select(_ => (Angle: random.NextDouble() * Math.PI, Period: 4 + random.NextDouble() * 12,
                                                           Phase: random.NextDouble() * 2 * Math.PI, Amplitude: 10 + random.NextDouble() * 20)).ToArray();
        double level = 20 + random.NextDouble() * 30;
        for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++)
        {
            double value = level + random.NextDouble() * 10;
            foreach (var g in gratings)
                value += g.Amplitude * Math.Sin(2 * Math.PI * (x * Math.Cos(g.Angle) + y * Math.Sin(g.Angle)) / g.Period + g.Phase);
            pixels[y * side + x] = (byte)Math.Clamp(value, 0, 100);
        }
        return pixels;
    }

    static byte[] Scaled(ImageDataset items, int item, int size)
    {
        using var stored = items.Gather([item]);
        var scaled = new byte[size * size];
        ImageDecoder.Render(stored.data<byte>().ToArray(), items.Width, items.Height, 1, 1, new Crop(new CropBox(0, 0, 1, 1), size, scaled));
        return scaled;
    }
}
