"""The books the embedded staging's upstream providers "know" (contract/bookstrack-api.md, "GET
/v1/search/title · isbn · advanced").

A catalogue is drawn once, lazily, with Faker seeded from the staging's one random source, plus the
known records the runbook's checks use: ``q=hamlet`` finds "Hamlet", ISBN ``9780743273565`` is
"The Great Gatsby". Each book carries the provider that answers for it (google-books, openlibrary
or isbndb). No HTTP here: the routes shape the wire answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from faker import Faker
from faker.providers import BaseProvider

PROVIDERS = ("google-books", "openlibrary", "isbndb")
PROVIDER_WEIGHTS = (0.6, 0.3, 0.1)
FORMATS = ("Hardcover", "Paperback", "E-book", "Mass Market")
SUBJECTS = (
    "Fiction", "Classics", "Drama", "Science Fiction", "Fantasy", "Mystery", "History", "Biography",
    "Poetry", "Romance", "Philosophy", "Science", "Travel", "Thriller", "Young Adult", "Essays",
)
MAX_RESULTS = 20

_ISBN_KEEP = re.compile(r"[^0-9X]")
_ISBN_VALID = re.compile(r"^(?:\d{13}|\d{9}[\dX])$")


# --- ISBN rules ---------------------------------------------------------------------------------
def normalise_isbn(raw: str) -> str:
    """Strip every character but digits and ``X`` (a lower-case ``x`` counts as ``X``)."""
    return _ISBN_KEEP.sub("", raw.upper())


def is_valid_isbn(normalised: str) -> bool:
    """13 digits, or 9 digits then a digit or ``X``: production checks the length, not the checksum."""
    return bool(_ISBN_VALID.match(normalised))


def isbn13_check_digit(first12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn10_check_digit(first9: str) -> str:
    total = sum(int(d) * (10 - i) for i, d in enumerate(first9))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def isbn10_to_13(isbn10: str) -> str:
    first12 = "978" + isbn10[:9]
    return first12 + isbn13_check_digit(first12)


def isbn13_to_10(isbn13: str) -> str | None:
    if not isbn13.startswith("978"):
        return None
    first9 = isbn13[3:12]
    return first9 + isbn10_check_digit(first9)


# --- records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Book:
    """One work with one edition and its authors, as an upstream provider would return it."""

    title: str
    author: str
    author_gender: str
    isbn13: str
    publisher: str
    publication_year: int
    page_count: int
    format: str
    subjects: tuple[str, ...]
    provider: str
    volume_id: str
    work_id: str
    first_publication_year: int | None = None

    @property
    def isbn10(self) -> str | None:
        return isbn13_to_10(self.isbn13)

    def work(self) -> dict[str, Any]:
        work: dict[str, Any] = {
            "title": self.title,
            "subjectTags": list(self.subjects),
            "firstPublicationYear": self.first_publication_year or self.publication_year,
            "coverImageURL": f"https://covers.openlibrary.org/b/isbn/{self.isbn13}-L.jpg",
            "primaryProvider": self.provider,
        }
        if self.provider == "google-books":
            work["googleBooksVolumeID"] = self.volume_id
        else:
            work["openLibraryWorkID"] = self.work_id
        return work

    def edition(self) -> dict[str, Any]:
        isbns = [self.isbn13] + ([self.isbn10] if self.isbn10 else [])
        return {
            "isbn": self.isbn13,
            "isbns": isbns,
            "title": self.title,
            "publisher": self.publisher,
            "publicationDate": str(self.publication_year),
            "pageCount": self.page_count,
            "format": self.format,
        }

    def author_record(self) -> dict[str, Any]:
        return {"name": self.author, "gender": self.author_gender}


KNOWN_BOOKS = (
    Book("Hamlet", "William Shakespeare", "Male", "9780743477123", "Simon & Schuster", 2003, 342,
         "Mass Market", ("Drama", "Classics", "Fiction"), "google-books", "Z7fUzQEACAAJ", "OL15330W", 1603),
    Book("The Great Gatsby", "F. Scott Fitzgerald", "Male", "9780743273565", "Scribner", 2004, 180,
         "Paperback", ("Fiction", "Classics"), "google-books", "iXn5U2IzVH0C", "OL468431W", 1925),
    Book("Dune", "Frank Herbert", "Male", "9780441172719", "Ace", 1990, 535, "Paperback",
         ("Science Fiction", "Fiction"), "openlibrary", "B1hSG45JCX4C", "OL893415W", 1965),
    Book("Pride and Prejudice", "Jane Austen", "Female", "9780141439518", "Penguin Classics", 2002, 480,
         "Paperback", ("Romance", "Classics", "Fiction"), "isbndb", "s1gVAAAAYAAJ", "OL66554W", 1813),
)


class BookTitleProvider(BaseProvider):
    """Faker has no book titles (notes/ecosystem.md §5): a few plausible title shapes."""

    _shapes = ("The {noun} of {name}", "{adj} {noun}", "The {adj} {noun}", "{noun} and {noun2}", "A {noun} in {place}")
    _nouns = ("Garden", "River", "Empire", "Shadow", "Letter", "Winter", "House", "Voyage", "Memory", "Crown",
              "Machine", "Island", "Silence", "Harvest", "Archive", "Lantern", "Orchard", "Tide", "Cipher")
    _adjs = ("Silent", "Last", "Hidden", "Broken", "Golden", "Distant", "Quiet", "Burning", "Forgotten", "Northern")

    def book_title(self) -> str:
        shape = self.random_element(self._shapes)
        return shape.format(
            noun=self.random_element(self._nouns),
            noun2=self.random_element(self._nouns),
            adj=self.random_element(self._adjs),
            name=self.generator.last_name(),
            place=self.generator.city(),
        )


@dataclass
class Catalogue:
    """Books indexed by ISBN-13, searchable by title and author (case-insensitive substrings)."""

    books: list[Book] = field(default_factory=list)
    by_isbn: dict[str, Book] = field(default_factory=dict)

    @classmethod
    def generate(cls, size: int, seed: int) -> "Catalogue":
        """The known records plus ``size`` books drawn with Faker from ``seed`` (same seed, same books)."""
        catalogue = cls()
        for book in _generated_books(size, seed):
            catalogue.add(book)
        return catalogue

    def add(self, book: Book) -> None:
        self.books.append(book)
        self.by_isbn[book.isbn13] = book

    def find_isbn(self, normalised: str) -> list[Book]:
        isbn13 = isbn10_to_13(normalised) if len(normalised) == 10 else normalised
        book = self.by_isbn.get(isbn13)
        return [book] if book else []

    def find_title(self, query: str) -> list[Book]:
        return self.find(title=query, author=None)

    def find(self, *, title: str | None, author: str | None) -> list[Book]:
        wanted_title = _fold(title) if title else None
        wanted_author = _fold(author) if author else None
        hits = [
            book for book in self.books
            if (wanted_title is None or wanted_title in _fold(book.title))
            and (wanted_author is None or wanted_author in _fold(book.author))
        ]
        # an exact title first, then shorter titles (closer matches), then by title
        hits.sort(key=lambda b: (_fold(b.title) != wanted_title, len(b.title), b.title))
        return hits[:MAX_RESULTS]


@lru_cache(maxsize=8)
def _generated_books(size: int, seed: int) -> tuple[Book, ...]:
    """Drawn once per (size, seed) per process: the records are immutable, so catalogues share them."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    fake.add_provider(BookTitleProvider)
    books: dict[str, Book] = {book.isbn13: book for book in KNOWN_BOOKS}
    while len(books) < size + len(KNOWN_BOOKS):
        isbn = fake.isbn13(separator="")
        if isbn in books:
            continue
        year = fake.random_int(1850, 2025)
        gender = fake.random_element(("Male", "Female", "Unknown"))
        author = fake.name_male() if gender == "Male" else fake.name_female() if gender == "Female" else fake.name()
        title = fake.book_title() if fake.random_int(0, 1) else fake.sentence(nb_words=3).rstrip(".").title()
        provider = fake.random.choices(PROVIDERS, weights=PROVIDER_WEIGHTS)[0]
        books[isbn] = Book(
            title=title,
            author=author,
            author_gender=gender,
            isbn13=isbn,
            publisher=fake.company(),
            publication_year=year,
            page_count=fake.random_int(80, 900),
            format=fake.random_element(FORMATS),
            subjects=tuple(fake.random_elements(SUBJECTS, length=2, unique=True)),
            provider=provider,
            volume_id=fake.pystr(min_chars=12, max_chars=12),
            work_id=f"OL{fake.random_int(10_000, 30_000_000)}W",
        )
    return tuple(books.values())


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def normalise_query(text: str) -> str:
    """The form a query takes in a cache key: lower case, single spaces, trimmed."""
    return _fold(text)
