"""Deterministic, realistic org data: the same `--seed N` always gives the same names and emails."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

FIRST_NAMES = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Mia",
    "William",
    "Amelia",
    "Benjamin",
    "Harper",
    "Lucas",
    "Evelyn",
    "Henry",
    "Abigail",
    "Theodore",
    "Emily",
    "Jack",
    "Ella",
    "Levi",
    "Elizabeth",
    "Alexander",
    "Camila",
    "Jackson",
    "Luna",
    "Mateo",
    "Sofia",
    "Daniel",
    "Avery",
    "Michael",
    "Mila",
    "Mason",
    "Aria",
    "Sebastian",
    "Scarlett",
    "Ethan",
    "Penelope",
    "Logan",
    "Layla",
    "Owen",
    "Chloe",
    "Samuel",
    "Victoria",
    "Jacob",
    "Madison",
    "Asher",
    "Eleanor",
    "Aiden",
    "Grace",
    "John",
    "Nora",
    "Joseph",
    "Riley",
    "Wyatt",
    "Zoey",
    "David",
    "Hannah",
    "Leo",
    "Hazel",
    "Luke",
    "Lily",
    "Julian",
    "Ellie",
    "Hudson",
    "Violet",
    "Grayson",
    "Lillian",
    "Matthew",
    "Zoe",
    "Ezra",
    "Stella",
    "Gabriel",
    "Aurora",
    "Carter",
    "Natalie",
    "Isaac",
    "Emilia",
    "Jayden",
    "Everly",
    "Luca",
    "Leah",
    "Anthony",
    "Aubrey",
    "Dylan",
    "Willow",
    "Lincoln",
    "Addison",
    "Thomas",
    "Lucy",
    "Maverick",
    "Audrey",
    "Priya",
    "Arjun",
    "Mei",
    "Wei",
    "Hiroshi",
    "Yuki",
    "Fatima",
    "Omar",
    "Ingrid",
    "Lars",
    "Chiara",
    "Marco",
    "Aisha",
    "Kwame",
    "Sanjay",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
    "Okafor",
    "Lindqvist",
    "Rossi",
    "Tanaka",
    "Schmidt",
    "Dubois",
]
COMPANY_WORDS = [
    "Northwind",
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Aperture",
    "Massive",
    "Dynamic",
    "Pied",
    "Piper",
    "Gringotts",
    "Oscorp",
    "Monarch",
    "Blue",
    "Sun",
    "Atlas",
    "Summit",
    "Harbor",
    "Beacon",
    "Cedar",
    "Falcon",
    "Granite",
    "Horizon",
    "Iron",
    "Juniper",
    "Keystone",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Orion",
    "Pinnacle",
    "Quantum",
    "Redwood",
    "Sierra",
    "Titan",
    "Vertex",
    "Willow",
    "Zenith",
    "Apex",
    "Bright",
    "Crest",
    "Delta",
    "Echo",
    "Frontier",
    "Golden",
    "Helix",
    "Indigo",
    "Lighthouse",
    "Maple",
    "Nova",
    "Oak",
    "Pioneer",
    "Silver",
]
COMPANY_KINDS = [
    "Labs",
    "Systems",
    "Analytics",
    "Logistics",
    "Health",
    "Robotics",
    "Software",
    "Capital",
    "Foods",
    "Energy",
    "Media",
    "Networks",
    "Partners",
    "Industries",
    "Solutions",
    "Cloud",
    "Bio",
    "Retail",
    "Motors",
    "Consulting",
]
TITLES = (
    "VP of Sales",
    "Head of Marketing",
    "Director of Operations",
    "CTO",
    "CFO",
    "Account Executive",
    "Sales Manager",
    "Procurement Lead",
    "Engineering Manager",
    "Chief of Staff",
    "RevOps Manager",
    "Product Manager",
    "Office Manager",
    "Founder",
    "Data Analyst",
)
INDUSTRIES = (
    "Technology",
    "Finance",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Education",
    "Media",
    "Energy",
)
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
CITIES = (
    ("Austin", "United States"),
    ("Boston", "United States"),
    ("Denver", "United States"),
    ("London", "United Kingdom"),
    ("Berlin", "Germany"),
    ("Paris", "France"),
    ("Toronto", "Canada"),
    ("Sydney", "Australia"),
    ("Dublin", "Ireland"),
    ("Singapore", "Singapore"),
)
REPS = 20


@dataclass(frozen=True)
class Company:
    name: str
    domain: str


class Seeder:
    """Yields (sobject, values) in an order that satisfies lookups; ids are filled in by the caller."""

    def __init__(self, count: int, now: datetime, seed: int = 20261128) -> None:
        self.count = count
        self.now = now
        self.rng = random.Random(seed)
        self._emails: set[str] = set()
        self._companies: set[str] = set()

    def reps(self, org_domain: str) -> Iterator[dict[str, str]]:
        for i in range(REPS):
            first, last = (
                FIRST_NAMES[(i * 7) % len(FIRST_NAMES)],
                LAST_NAMES[(i * 11) % len(LAST_NAMES)],
            )
            email = f"{first}.{last}@{org_domain}".lower()
            yield {
                "FirstName": first,
                "LastName": last,
                "Email": email,
                "Username": email,
                "Alias": (first[0] + last)[:8].lower(),
                "Title": "Account Executive",
            }

    def company(self) -> Company:
        while True:
            name = f"{self.rng.choice(COMPANY_WORDS)} {self.rng.choice(COMPANY_KINDS)}"
            if name in self._companies:
                name = f"{name} {self.rng.choice(('Group', 'Inc', 'Co', 'Ltd', 'GmbH', 'LLC'))}"
            if name not in self._companies:
                self._companies.add(name)
                slug = "".join(c for c in name.lower() if c.isalnum())
                return Company(name, f"{slug}.{self.rng.choice(('com', 'io', 'co', 'net'))}")
            if len(self._companies) > 5000:
                self._companies.clear()

    def person(self, domain: str) -> dict[str, str]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        local = self.rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}"))
        email = f"{local}@{domain}".lower()
        n = 2
        while email in self._emails:
            email = f"{local}{n}@{domain}".lower()
            n += 1
        self._emails.add(email)
        city, country = self.rng.choice(CITIES)
        return {
            "FirstName": first,
            "LastName": last,
            "Email": email,
            "Title": self.rng.choice(TITLES),
            "Phone": self._phone(),
            "City": city,
            "Country": country,
        }

    def account(self, company: Company) -> dict[str, object]:
        city, country = self.rng.choice(CITIES)
        return {
            "Name": company.name,
            "Website": f"https://www.{company.domain}",
            "Industry": self.rng.choice(INDUSTRIES),
            "Type": "Prospect",
            "NumberOfEmployees": self.rng.choice((12, 45, 120, 350, 800, 2400, 12000)),
            "BillingCity": city,
            "BillingCountry": country,
            "Phone": self._phone(),
        }

    def contact(self, company: Company, account_id: str) -> dict[str, object]:
        p = self.person(company.domain)
        return {
            "FirstName": p["FirstName"],
            "LastName": p["LastName"],
            "Email": p["Email"],
            "Title": p["Title"],
            "Phone": p["Phone"],
            "AccountId": account_id,
            "MailingCity": p["City"],
            "MailingCountry": p["Country"],
            "LeadSource": self.rng.choice(("Web", "Partner Referral", "Other")),
        }

    def lead(self) -> dict[str, object]:
        company = self.company()
        p = self.person(company.domain)
        return {
            "FirstName": p["FirstName"],
            "LastName": p["LastName"],
            "Email": p["Email"],
            "Title": p["Title"],
            "Phone": p["Phone"],
            "Company": company.name,
            "Status": self.rng.choice(LEAD_STATUSES),
            "City": p["City"],
            "Country": p["Country"],
            "LeadSource": self.rng.choice(("Web", "Purchased List")),
        }

    def opportunity(self, company: Company, account_id: str) -> dict[str, object]:
        close = (self.now + timedelta(days=self.rng.randint(-90, 180))).date().isoformat()
        product = self.rng.choice(("Platform", "Renewal", "Expansion", "Pilot", "Services"))
        return {
            "Name": f"{company.name} - {product}",
            "AccountId": account_id,
            "StageName": self.rng.choice(STAGES),
            "CloseDate": close,
            "Amount": float(self.rng.randrange(5_000, 250_000, 500)),
        }

    def _phone(self) -> str:
        return f"+1 {self.rng.randint(200, 989)} 555 {self.rng.randint(1000, 9999)}"
