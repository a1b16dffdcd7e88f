"""Sentences for synthetic speech test corpora, from small domain grammars.

Each domain is a template grammar: templates such as ``"start {medication} {dose}
{frequency}"`` whose ``{slots}`` are filled from word lists, and fillers may contain
slots of their own (``"{dose_mg} milligrams"``). Numbers are written out as a
speaker would say them (``"one hundred and twenty over eighty"``), so the text can be
read by a speech synthesiser and scored against a recogniser's words unchanged.

Every sentence is lower case, without punctuation, with single spaces between words,
and every word is in the CMU pronouncing dictionary that ships with PocketSphinx
(``cmudict-en-us.dict``): a recogniser cannot produce a word it has no pronunciation
for, so an out-of-dictionary reference word would be an error no system could avoid.

Domains
-------
``clinical``
    Clinical dictation: presenting complaints, vital signs, examination findings,
    medications with doses and frequencies, test results, follow-up instructions.
``general``
    Everyday requests to an assistant and news-like sentences.

Generation is seeded and deterministic: the same domain, count and seed give the same
sentences in any process on any machine.

Examples
--------
>>> sentences("clinical", 2, seed=1) == sentences("clinical", 2, seed=1)
True
>>> spoken_number(120)
'one hundred and twenty'
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from groupwise._errors import InputError

__all__ = ["DOMAINS", "sentences", "split_test_and_train", "vocabulary", "spoken_number"]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spoken_number(n: int) -> str:
    """Write a whole number from 0 to 999 999 as it is said in British and clinical English.

    Parameters
    ----------
    n : int
        The number.

    Returns
    -------
    str
        Lower-case words, with "and" after the hundreds ("one hundred and five").

    Examples
    --------
    >>> spoken_number(0), spoken_number(42), spoken_number(325)
    ('zero', 'forty two', 'three hundred and twenty five')
    >>> spoken_number(1500)
    'one thousand five hundred'
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 1_000_000:
        raise InputError(
            f"spoken_number takes a whole number from 0 to 999999, got {n!r}",
            fix="pass an int in that range",
        )
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {spoken_number(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    head = f"{spoken_number(thousands)} thousand"
    if not rest:
        return head
    # "one thousand and five" but "one thousand five hundred": the "and" only goes
    # before a last group with no hundreds.
    return f"{head} and {spoken_number(rest)}" if rest < 100 else f"{head} {spoken_number(rest)}"


def _numbers(values: Iterable[int]) -> tuple[str, ...]:
    return tuple(spoken_number(v) for v in values)


def _words(text: str) -> tuple[str, ...]:
    """Fillers written one per line (multi-word fillers allowed), blank lines ignored."""
    return tuple(line.strip() for line in text.strip().splitlines() if line.strip())


def _split(text: str) -> tuple[str, ...]:
    """Single-word fillers written as a whitespace-separated list."""
    return tuple(text.split())


# --------------------------------------------------------------------------- clinical
# Only words with a pronunciation in PocketSphinx's cmudict-en-us.dict may appear (the
# tests check). Most modern generic drug names (metformin, lisinopril, ...) and terms
# such as "atrial" or "effusion" are missing from it, so the medication list leans on
# older and brand names and some findings are phrased in plain words.

_CLINICAL_TEMPLATES = _words("""
the patient reports {symptom} {course}
the patient reports {symptom} radiating to the {side} {limb}
the patient is a {age} year old {person} presenting with {symptom}
this is a {age} year old {person} with a history of {condition} who presents with {symptom}
{person_cap} presents with {symptom} and {symptom} {course}
the patient complains of {symptom} {course}
the patient denies {symptom} or {symptom}
she reports {symptom} since {when}
he reports {symptom} since {when}
blood pressure is {bp}
blood pressure {bp} heart rate {pulse}
heart rate is {pulse} beats per minute and {regularity}
pulse {pulse} and {regularity} with blood pressure {bp}
temperature is {temperature} {temp_note}
respiratory rate {resp} oxygen saturation {saturation} percent on room air
oxygen saturation is {saturation} percent on {oxygen}
weight is {weight} kilograms {weight_note}
blood glucose is {glucose} milligrams per deciliter {glucose_when}
pain is {pain} out of ten {course}
vital signs are blood pressure {bp} pulse {pulse} temperature {temperature}
start {medication} {dose} {route} {frequency}
continue {medication} {dose} {frequency}
increase the {medication} to {dose} {frequency}
reduce the {medication} to {dose} {frequency}
stop the {medication} because of {side_effect}
discontinue {medication} and start {medication} {dose} {frequency}
prescribe {medication} {dose} {frequency} for {duration}
give {medication} {dose} {route} now
the patient takes {medication} {dose} {frequency} and {medication} {dose} {frequency}
the patient is allergic to {medication} which causes {side_effect}
no known drug allergies and no regular medication except {medication} {frequency}
past medical history is significant for {condition} and {condition}
history of {condition} diagnosed {when}
family history of {condition} in {relative}
on examination the {region} is {exam_state} and the {side} {limb} is {exam_state}
examination of the {side} {limb} shows {finding}
there is {finding} over the {side} {limb}
there is no {finding} of the {region}
the {region} is {exam_state} with {finding}
the lungs are {lung_state} and the {region} is {exam_state}
heart sounds are normal with {heart_note} and the pulse is {pulse}
on review after {duration} the abdomen is soft with {abdo_note} and bowel sounds are {bowel}
the patient is alert and oriented and in {distress} with a temperature of {temperature}
{bloods} showed {blood_result}
{imaging} showed {imaging_result}
use the {medication_inhaled} inhaler {tablets} puffs {frequency}
order {bloods} and {imaging}
order {bloods} and {bloods}
we will check {test} {when_future}
the {test} was {result_short}
impression is {condition} {impression_note}
the most likely diagnosis is {condition} {impression_note}
plan is to {plan} and review in {duration}
refer to {specialist} {urgency} for {referral_reason}
follow up with {specialist} in {duration}
follow up in clinic in {duration} or sooner if {warning}
return to the {place} {urgency} if {warning}
{advise} the patient to {instruction}
the patient was advised to {instruction} and {instruction}
the patient should {instruction} for {duration}
discharge home on {medication} {dose} {frequency}
the patient was seen in the {place} {when} for {symptom}
the patient lives {living} and {function} and can walk for {few} minutes
she smokes {cigarettes} cigarettes a day and drinks {alcohol}
he smokes {cigarettes} cigarettes a day and drinks {alcohol}
the wound on the {side} {limb} is {wound_state} after {duration}
""")

_CLINICAL_SLOTS: dict[str, tuple[str, ...]] = {
    "person": _words("""
man
woman
male
female
gentleman
lady
retired teacher
retired nurse
farmer
student
builder
mother of {small} children
father of {small} children
"""),
    "person_cap": _words("""
a {age} year old man
a {age} year old woman
a {age} year old retired teacher
the patient
""") ,
    "age": _numbers(range(18, 96)),
    "small": _numbers(range(2, 7)),
    "symptom": _words("""
chest pain
central chest pain
chest tightness
shortness of breath
shortness of breath on exertion
abdominal pain
lower abdominal pain
upper abdominal pain
nausea
vomiting
diarrhea
constipation
headache
severe headache
dizziness
fatigue
fever
fevers and chills
a dry cough
a productive cough
wheezing
palpitations
back pain
lower back pain
joint pain
knee pain
hip pain
shoulder pain
neck pain
swelling of the ankles
swelling of the {side} leg
blurred vision
double vision
weakness in the {side} {limb}
numbness in the {side} {limb}
tingling in both feet
a sore throat
ear pain
loss of appetite
weight loss
night sweats
a rash on the {region}
itching
difficulty swallowing
heartburn
blood in the urine
blood in the stool
burning when passing urine
passing urine often
poor sleep
anxiety
low mood
confusion
a tremor
neck stiffness
a fall at home
loss of consciousness
coughing up blood
leg cramps
"""),
    "course": _words("""
for the past {duration}
for {duration}
since {when}
worse on exertion
worse at night
worse after eating
worse when lying flat
relieved by rest
that comes and goes
that started suddenly
that started gradually
getting worse over {duration}
with no relief from {medication}
"""),
    "when": _words("""
yesterday
last night
this morning
last week
last month
two days ago
three days ago
{small} weeks ago
{small} months ago
{small} years ago
childhood
"""),
    "when_future": _words("""
today
tomorrow
in the morning
before the next visit
in {duration}
"""),
    "duration": _words("""
{few} days
{few} weeks
{few} months
one week
one month
a week
a month
a year
{few} hours
"""),
    "few": _numbers(range(2, 15)),
    "side": _split("left right"),
    "limb": _words("""
arm
leg
hand
foot
shoulder
knee
hip
ankle
wrist
elbow
thigh
calf
forearm
"""),
    "region": _words("""
chest
abdomen
back
neck
face
scalp
throat
right lower quadrant
left lower quadrant
groin
lower back
upper back
skin
"""),
    "bp": _words("""
{systolic} over {diastolic}
"""),
    "systolic": _numbers(range(90, 201, 2)),
    "diastolic": _numbers(range(50, 121, 2)),
    "pulse": _numbers(range(40, 151)),
    "resp": _numbers(range(10, 37)),
    "saturation": _numbers(range(84, 101)),
    "temperature": _words("""
thirty {tenths_36_39} degrees
{fahrenheit} degrees fahrenheit
"""),
    "tenths_36_39": tuple(
        f"{spoken_number(whole)} point {spoken_number(tenth)}"
        for whole in range(6, 10)
        for tenth in range(10)
    ),
    "fahrenheit": tuple(
        f"{spoken_number(whole)} point {spoken_number(tenth)}"
        for whole in range(96, 105)
        for tenth in range(10)
    ),
    "oxygen": _words("""
room air
{few} liters of oxygen
a face mask
"""),
    "weight": _numbers(range(40, 141)),
    "glucose": _numbers(range(60, 401, 5)),
    "pain": _numbers(range(1, 11)),
    "medication": _words("""
aspirin
insulin
ibuprofen
acetaminophen
amoxicillin
penicillin
morphine
heparin
albuterol
nitroglycerin
vancomycin
lithium
digitalis
diltiazem
methotrexate
tamoxifen
cortisone
hydrocortisone
valium
prozac
zoloft
zantac
tylenol
advil
claritin
ritalin
xanax
ambien
zocor
"""),
    "dose": _words("""
{dose_mg} milligrams
{dose_mcg} micrograms
{few} units
one tablet
{tablets} tablets
{tablets} capsules
{dose_ml} milliliters
"""),
    "dose_mg": _numbers(
        (1, 2, 5, 10, 12, 20, 25, 30, 40, 50, 60, 75, 80, 100, 120, 125, 150, 200, 250, 300,
         325, 400, 500, 600, 750, 800, 1000)
    ),
    "dose_mcg": _numbers((25, 50, 75, 88, 100, 112, 125, 150, 200)),
    "tablets": _numbers(range(2, 5)),
    "dose_ml": _numbers((5, 10, 15, 20, 50, 100, 250, 500, 1000)),
    "route": _words("""
by mouth
orally
intravenously
under the tongue
by injection
on the skin
inhaled
"""),
    "frequency": _words("""
once daily
twice daily
three times a day
four times a day
every {hours} hours
at bedtime
in the morning
every morning
every night
with meals
as needed for pain
as needed for nausea
once a week
"""),
    "hours": _numbers((2, 4, 6, 8, 12)),
    "side_effect": _words("""
a rash
nausea
a cough
dizziness
swelling of the lips
stomach upset
muscle aches
low blood pressure
bleeding
hives
"""),
    "condition": _words("""
diabetes
type two diabetes
high blood pressure
hypertension
asthma
heart failure
an irregular heartbeat
coronary artery disease
chronic kidney disease
depression
a thyroid problem
a previous stroke
pneumonia
migraine
arthritis
osteoarthritis
rheumatoid arthritis
epilepsy
obesity
anemia
gout
breast cancer
prostate cancer
high cholesterol
a heart attack
angina
bronchitis
a urinary tract infection
gallstones
kidney stones
appendicitis
a skin infection
a chest infection
sleep apnea
"""),
    "impression_note": _words("""
likely viral
which is stable
which is poorly controlled
which is well controlled
with acute worsening
unlikely to be serious
"""),
    "exam_state": _words("""
normal
tender
swollen
warm to the touch
red and swollen
mildly tender
"""),
    "finding": _words("""
tenderness
swelling
redness
bruising
a small laceration
a large bruise
crackles
a soft murmur
edema
pitting edema
a rash
a small mass
guarding
rebound tenderness
decreased range of movement
reduced power
reduced sensation
a deformity
"""),
    "lung_state": _words("""
clear
clear on both sides
clear with good air entry
with a wheeze throughout
with crackles at the {side} base
with reduced air entry on the {side}
"""),
    "heart_note": _words("""
no murmurs
a soft systolic murmur
a regular rhythm
an irregular rhythm
"""),
    "abdo_note": _words("""
no tenderness
mild tenderness in the {region}
no masses
no guarding
"""),
    "distress": _words("""
no distress
mild distress
moderate distress
severe pain
"""),
    "test": _words("""
{bloods}
{imaging}
"""),
    "bloods": _words("""
a full blood count
a complete blood count
kidney function
liver function tests
a lipid profile
a thyroid function test
a urine sample
blood cultures
a blood sugar
a cholesterol level
a pregnancy test
a stool sample
a vitamin d level
"""),
    "imaging": _words("""
a chest x ray
an x ray of the {side} {limb}
an ultrasound of the abdomen
an ultrasound of the heart
an electrocardiogram
a scan of the head
"""),
    "blood_result": _words("""
a raised white cell count
a low hemoglobin
a high potassium
a low sodium
normal kidney function
mildly raised liver enzymes
a urinary tract infection
a cholesterol of {few} point {digit}
no abnormality
"""),
    "imaging_result": _words("""
no acute changes
normal sinus rhythm
an irregular rhythm with a rate of {pulse}
a fracture of the {side} {limb}
no fracture
a small amount of fluid at the {side} base
an enlarged heart
a shadow in the {side} lung
"""),
    "medication_inhaled": _words("""
albuterol
blue
brown
steroid
"""),
    "digit": _numbers(range(10)),
    "urgency": ("",) + _words("""
straight away
the same day
within {few} hours
"""),
    "advise": _split("advise advised remind reminded encourage encouraged"),
    "regularity": _words("""
regular
irregular
irregularly irregular
regular at rest
"""),
    "temp_note": ("",) + _words("""
this morning
at triage
after {medication}
and falling
and rising
"""),
    "weight_note": _words("""
up from last visit
down {few} kilograms since {when}
which is stable
after a recent illness
"""),
    "glucose_when": _words("""
before breakfast
after meals
at bedtime
this morning
on the finger prick test
"""),
    "bowel": _words("""
normal
present
reduced
increased
absent
"""),
    "relative": _words("""
his father
her father
his mother
her mother
a brother
a sister
both parents
a grandparent
"""),
    "result_short": _words("""
normal
abnormal
unremarkable
reassuring
borderline
slightly raised
"""),
    "plan": _words("""
admit for observation
start antibiotics
repeat the blood tests in {duration}
monitor the blood pressure at home
review the medication list
arrange a scan
recheck the wound in {duration}
increase fluids and rest
treat the pain and review tomorrow
"""),
    "specialist": _words("""
cardiology
neurology
dermatology
the surgeons
the orthopedic team
physical therapy
the diabetes nurse
the primary care physician
the kidney specialist
the eye clinic
mental health services
"""),
    "referral_reason": _words("""
further assessment
an urgent opinion
review of the {condition}
a scan of the {side} {limb}
management of {condition}
"""),
    "warning": _words("""
the symptoms get worse
the pain returns
the fever persists
there is any bleeding
breathing becomes difficult
the swelling spreads
new symptoms develop
"""),
    "place": _words("""
emergency department
clinic
office
urgent care center
hospital
surgery
"""),
    "instruction": _words("""
drink plenty of fluids
rest at home
avoid heavy lifting
take the tablets with food
keep the wound clean and dry
check the blood sugar twice a day
check the blood pressure every morning
avoid alcohol
stop smoking
elevate the {side} leg
apply ice to the {side} {limb}
walk for thirty minutes a day
lose some weight
eat a low salt diet
use the inhaler before exercise
finish the course of antibiotics
book a follow up appointment
come back if things get worse
"""),
    "living": _words("""
alone
with her husband
with his wife
with family
in a care home
with a partner
"""),
    "function": _words("""
is independent
needs help with shopping
uses a walking stick
uses a frame
manages well
"""),
    "cigarettes": _numbers(range(2, 41)),
    "alcohol": _words("""
no alcohol
rarely
{small} glasses of wine a week
{few} units a week
socially
"""),
    "wound_state": _words("""
healing well
clean and dry
red and warm
weeping
infected
"""),
}

# --------------------------------------------------------------------------- general

_GENERAL_TEMPLATES = _words("""
please set an alarm for {clock} {day}
set a timer for {few} minutes {timer_for}
wake me up at {clock} {day}
what is the weather like in {city} {day}
will it {weather_verb} in {city} {day}
call {name} at {clock}
call {name} on {mobile}
send a message to {name} saying {message}
tell {name} that {message}
remind me to {task} {day}
remind me to {task} at {clock}
add {item} and {item} to the shopping list
i need to buy {item} {item} and {item}
turn {on_off} the {appliance} in the {room}
turn the {appliance} {up_down} in the {room}
play some {music} music in the {room} {music_note}
play the {album} album by {artist} in the {room}
how long does it take to drive to {city} {day}
how far is it from {city} to {city}
book a table for {few} at {restaurant} {day}
find a {shop} near {landmark} that is open {day}
what time does the {shop} close {day}
the meeting has been moved to {day} at {clock}
my train to {city} leaves at {clock}
the flight from {city} to {city} is delayed by {few} hours
can you help me {help_task} {day}
i would like to {help_task} {day}
where did i leave {owner} {belonging} {past_time}
{owner} {belonging} is {problem}
the {org} announced {news} on {weekday}
the {org} said on {weekday} that {claim}
{city} {council} approved {project}
officials in {city} expect {forecast}
the price of {commodity} {moved} by {few} percent {day}
{team} beat {team} by {score} points {day}
{team} lost to {team} {score} to {score}
the {sport} match in {city} was cancelled because of {cause}
thousands of people gathered in {city} to {protest}
a new {building} will open in {city} {next_time}
the {org} will hire {amount} new workers {next_time}
traffic is heavy on the road to {city} because of {cause}
schools in {city} will be closed {day} because of {cause}
scientists in {city} say that {science}
the president will visit {city} {next_time}
{name} won the {prize} for the {second} year in a row
our neighbours are moving to {city} {next_time}
i am going to {city} with {name} {next_time}
""")

_GENERAL_SLOTS: dict[str, tuple[str, ...]] = {
    "clock": _words("""
{hour} o'clock
{hour} thirty
{hour} fifteen
{hour} forty five
half past {hour}
quarter past {hour}
quarter to {hour}
{hour} in the morning
{hour} in the evening
noon
midnight
"""),
    "hour": _numbers(range(1, 13)),
    "few": _numbers(range(2, 31)),
    "score": _numbers(range(1, 41)),
    "amount": _words("""
{hundreds} hundred
{few} thousand
one thousand
"""),
    "hundreds": _numbers(range(2, 10)),
    "day": _words("""
today
tomorrow
tonight
this morning
this afternoon
this evening
this weekend
next week
on {weekday}
next {weekday}
"""),
    "timer_for": ("",) + _words("""
for the pasta
for the oven
for the rice
for my break
and tell me when it is done
"""),
    "music_note": ("",) + _words("""
please
quietly
for an hour
until dinner
"""),
    "owner": _split("my his her your our"),
    "album": _split("latest new first best live"),
    "past_time": _words("""
yesterday
last night
this morning
on {weekday}
at the {shop}
"""),
    "weekday": _split("monday tuesday wednesday thursday friday saturday sunday"),
    "next_time": _words("""
next year
next month
next week
in the spring
in the summer
in the autumn
in the winter
in {month}
later this year
"""),
    "month": _split(
        "january february march april may june july august september october november december"
    ),
    "city": _split("""
boston chicago london paris denver seattle dallas houston atlanta miami phoenix detroit
toronto madrid berlin rome dublin glasgow edinburgh manchester sydney melbourne tokyo
delhi mumbai lagos nairobi cairo moscow vienna oslo lisbon portland baltimore cleveland
"""),
    "name": _split("""
john mary david sarah michael anna james emma robert laura peter susan paul linda
mark helen daniel maria thomas grace tom kate ben lucy sam alex chris nina raj
ahmed fatima carlos sofia wei ken
"""),
    "mobile": _words("""
speaker
his mobile
her mobile
the home phone
video
"""),
    "message": _words("""
i am running late
i will be there in {few} minutes
dinner is ready
call me back when you can
the meeting is cancelled
happy birthday
see you {day}
i left the keys on the table
can you pick up the kids
the package has arrived
"""),
    "task": _words("""
pick up the kids
pay the rent
water the plants
call the dentist
buy a birthday present
take out the rubbish
feed the cat
walk the dog
renew my passport
book a hair cut
send the report
return the library books
charge my phone
pick up the dry cleaning
fill up the car
"""),
    "item": _split("""
milk bread eggs butter cheese apples bananas oranges coffee tea rice pasta tomatoes
onions potatoes carrots chicken fish beef soup cereal yogurt honey flour sugar salt
pepper soap shampoo toothpaste batteries candles napkins juice water lemons grapes
"""),
    "on_off": _split("on off"),
    "up_down": _split("up down"),
    "appliance": _split("lights heater fan television radio oven kettle dishwasher lamp heating"),
    "room": _words("""
kitchen
bedroom
living room
dining room
office
garage
bathroom
hallway
basement
garden
"""),
    "music": _split("jazz rock classical country blues folk pop reggae dance piano"),
    "artist": _words("""
the beatles
the rolling stones
madonna
elvis
adele
queen
the band
my favourite singer
"""),
    "restaurant": _words("""
the italian place
the pizza place
the thai restaurant
the steak house
the cafe on the corner
the new sushi bar
"""),
    "shop": _words("""
pharmacy
supermarket
bakery
post office
bank
library
gym
hardware store
petrol station
coffee shop
"""),
    "landmark": _words("""
here
the station
the airport
my office
the park
the hotel
the museum
"""),
    "help_task": _words("""
find a good dentist
plan a trip to {city}
write a letter
fix the printer
change my password
pay a bill
order a taxi
learn some spanish
cook dinner
"""),
    "belonging": _split("phone wallet laptop umbrella jacket bag watch passport car bike"),
    "problem": _words("""
broken
missing
not working
making a strange noise
out of battery
"""),
    "weather_verb": _split("rain snow"),
    "org": _words("""
government
city council
central bank
school board
police
hospital
university
museum
company
airline
union
health department
"""),
    "council": _words("""
city council
planning board
voters
"""),
    "news": _words("""
a new policy on {policy}
plans for a new {building}
record profits
a delay to the new {building}
a rise in {commodity} prices
an investigation into {policy}
new rules for {policy}
"""),
    "policy": _words("""
housing
public transport
school meals
parking
water prices
energy use
road safety
"""),
    "claim": _words("""
prices will rise {next_time}
the new {building} will open {next_time}
more staff are needed
the plan is working
talks will continue {next_time}
"""),
    "project": _words("""
a new {building}
a plan to build more homes
a budget for {policy}
funding for a new {building}
"""),
    "building": _split("bridge school hospital library stadium park museum station airport road"),
    "forecast": _words("""
heavy rain {day}
record crowds this weekend
snow {next_time}
a busy summer
more visitors {next_time}
"""),
    "commodity": _split("oil gold wheat coffee gas silver copper sugar bread petrol"),
    "moved": _split("rose fell jumped dropped climbed"),
    "team": _words("""
the tigers
the lions
the eagles
the bears
the giants
the rangers
the hawks
the kings
the wolves
the sharks
"""),
    "sport": _split("football tennis cricket rugby hockey baseball basketball"),
    "cause": _words("""
heavy snow
the storm
flooding
high winds
a power cut
a strike
an accident
road works
"""),
    "protest": _words("""
protest against {policy} changes
celebrate the new year
watch the parade
support the local team
"""),
    "science": _words("""
the ice is melting faster than expected
the new drug could help millions
the planet is getting warmer
a new species was found in the forest
coffee may be good for the heart
"""),
    "prize": _words("""
race
marathon
award
title
cup
competition
"""),
    "second": _split("second third fourth fifth"),
}


@dataclass(frozen=True)
class _Grammar:
    """A parsed template grammar: each text is a tuple of literal strings and slot names."""

    templates: tuple[tuple[tuple[bool, str], ...], ...]
    slots: Mapping[str, tuple[tuple[tuple[bool, str], ...], ...]]


_SLOT = re.compile(r"\{(\w+)\}")

_SOURCES: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {
    "clinical": (_CLINICAL_TEMPLATES, _CLINICAL_SLOTS),
    "general": (_GENERAL_TEMPLATES, _GENERAL_SLOTS),
}

#: Names of the domains :func:`sentences` can generate.
DOMAINS: tuple[str, ...] = tuple(sorted(_SOURCES))


def _parse(text: str) -> tuple[tuple[bool, str], ...]:
    """Split a template into (is_slot, value) parts; literal parts keep their spaces."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _SLOT.finditer(text):
        if m.start() > pos:
            parts.append((False, text[pos : m.start()]))
        parts.append((True, m.group(1)))
        pos = m.end()
    if pos < len(text):
        parts.append((False, text[pos:]))
    return tuple(parts)


@functools.cache
def _grammar(domain: str) -> _Grammar:
    if not isinstance(domain, str) or domain not in _SOURCES:
        raise InputError(
            f"unknown text domain {domain!r}",
            fix=f"use one of: {', '.join(DOMAINS)}",
        )
    templates, slots = _SOURCES[domain]
    grammar = _Grammar(
        templates=tuple(_parse(t) for t in templates),
        slots={name: tuple(_parse(f) for f in fillers) for name, fillers in slots.items()},
    )
    # The grammars are module constants; a typo in a slot name should fail loudly the
    # first time a domain is used rather than emit "{slot}" into a corpus.
    for parts in (*grammar.templates, *(f for fs in grammar.slots.values() for f in fs)):
        for is_slot, value in parts:
            if is_slot and value not in grammar.slots:
                raise RuntimeError(f"domain {domain!r} uses undefined slot {{{value}}}")
    return grammar


def _literal_words(parts: tuple[tuple[bool, str], ...]) -> list[str]:
    return [w for is_slot, value in parts if not is_slot for w in value.split()]


@functools.cache
def _reach(domain: str) -> dict[str, frozenset[str]]:
    """For each slot, the slots reachable from it (itself included)."""
    g = _grammar(domain)
    done: dict[str, frozenset[str]] = {}

    def visit(slot: str, path: tuple[str, ...]) -> frozenset[str]:
        if slot in done:
            return done[slot]
        if slot in path:
            raise RuntimeError(f"domain {domain!r} has a recursive slot {{{slot}}}")
        found = {slot}
        for filler in g.slots[slot]:
            for is_slot, value in filler:
                if is_slot:
                    found |= visit(value, (*path, slot))
        done[slot] = frozenset(found)
        return done[slot]

    for name in g.slots:
        visit(name, ())
    return done


def _reaches(parts: tuple[tuple[bool, str], ...], target: str, reach: dict[str, frozenset[str]]) -> bool:
    return any(is_slot and target in reach[value] for is_slot, value in parts)


@functools.cache
def _capacity(domain: str) -> int:
    """How many derivations the grammar has: an upper bound on its distinct sentences."""
    g = _grammar(domain)
    memo: dict[str, int] = {}

    def slot_count(slot: str) -> int:
        if slot not in memo:
            memo[slot] = sum(text_count(f) for f in g.slots[slot])
        return memo[slot]

    def text_count(parts: tuple[tuple[bool, str], ...]) -> int:
        total = 1
        for is_slot, value in parts:
            if is_slot:
                total *= slot_count(value)
        return total

    return sum(text_count(t) for t in g.templates)


def _expand(
    domain: str,
    parts: tuple[tuple[bool, str], ...],
    rng: random.Random,
    target: tuple[str, int] | None = None,
) -> str:
    """Fill the slots of ``parts`` at random.

    With ``target = (slot, i)`` the expansion is steered so that filler ``i`` of ``slot``
    is used at least once: the first slot that can lead to it is expanded towards it,
    everything else stays random. The vocabulary pass uses this to reach rare words.
    """
    g = _grammar(domain)
    reach = _reach(domain)
    steer_at = None
    if target is not None:
        for k, (is_slot, value) in enumerate(parts):
            if is_slot and target[0] in reach[value]:
                steer_at = k
                break
    out: list[str] = []
    for k, (is_slot, value) in enumerate(parts):
        if not is_slot:
            out.append(value)
            continue
        fillers = g.slots[value]
        if target is None or k != steer_at:
            out.append(_expand(domain, rng.choice(fillers), rng))
        elif value == target[0]:
            out.append(_expand(domain, fillers[target[1]], rng))
        else:
            towards = [f for f in fillers if _reaches(f, target[0], reach)]
            out.append(_expand(domain, rng.choice(towards), rng, target))
    return " ".join("".join(out).split())


def _rng(domain: str, seed: int, purpose: str) -> random.Random:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an int, got {seed!r}", fix="pass a whole number such as seed=0")
    # A string seed is hashed with SHA-512 by random.Random, so the stream is the same
    # in every process and on every platform, unlike hash()-based seeding.
    return random.Random(f"groupwise.textgen:{domain}:{purpose}:{seed}")


def _check_count(name: str, n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"{name} must be a non-negative int, got {n!r}", fix=f"pass {name}=100, say")


def _distinct(domain: str, n: int, rng: random.Random, exclude: Collection[str] = ()) -> list[str]:
    capacity = _capacity(domain)
    if n + len(exclude) > capacity:
        raise InputError(
            f"the {domain!r} grammar can make at most {capacity} distinct sentences, "
            f"{n + len(exclude)} were asked for",
            fix="ask for fewer sentences",
        )
    g = _grammar(domain)
    seen = set(exclude)
    out: list[str] = []
    # Rejection sampling: the grammars have far more derivations than anyone asks for,
    # so duplicates are rare; the attempt limit only guards against a near-full grammar.
    attempts = 0
    limit = 50 * n + 10_000
    while len(out) < n:
        attempts += 1
        if attempts > limit:
            raise InputError(
                f"could only make {len(out)} distinct {domain!r} sentences of the {n} asked for",
                fix="ask for fewer sentences",
            )
        s = _expand(domain, rng.choice(g.templates), rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def sentences(domain: str, n: int, *, seed: int = 0) -> list[str]:
    """Generate ``n`` distinct sentences from a domain grammar.

    Parameters
    ----------
    domain : str
        One of :data:`DOMAINS` (``"clinical"``, ``"general"``).
    n : int
        How many sentences.
    seed : int
        Seed; the same domain, ``n`` and seed give the same list, and a longer list
        starts with the shorter one.

    Returns
    -------
    list of str
        Lower-case sentences without punctuation, words separated by single spaces,
        numbers written as words.

    Raises
    ------
    InputError
        For an unknown domain, or when the grammar cannot make ``n`` distinct sentences.

    Examples
    --------
    >>> s = sentences("clinical", 50, seed=3)
    >>> len(s), len(set(s))
    (50, 50)
    >>> sentences("clinical", 3, seed=3) == s[:3]
    True
    >>> sentences("legal", 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: unknown text domain 'legal'. Fix: use one of: clinical, general.
    """
    _grammar(domain)
    _check_count("n", n)
    return _distinct(domain, n, _rng(domain, seed, "sentences"))


def split_test_and_train(
    domain: str, *, n_test: int, n_train: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Test sentences for a corpus and a separate language-model training text.

    Both come from the same grammar, so a language model trained on the training text
    knows the domain's words and phrasing without having seen the test sentences: no
    training sentence equals a test sentence. The test sentences are exactly
    ``sentences(domain, n_test, seed=seed)``. After the ``n_train`` sampled training
    sentences, a vocabulary pass appends sentences (steered towards each grammar filler
    whose words are not yet in the text, still never a test sentence) until every word
    of :func:`vocabulary` occurs in the training text at least once, so no test word is
    out of the language model's vocabulary.

    Parameters
    ----------
    domain : str
        One of :data:`DOMAINS`.
    n_test, n_train : int
        Number of test sentences, and of sampled training sentences (the vocabulary
        pass adds some more; at most one per grammar filler).
    seed : int
        Seed.

    Returns
    -------
    test : list of str
        ``n_test`` distinct sentences.
    train : list of str
        Distinct training sentences, none of them in ``test``.

    Raises
    ------
    InputError
        For an unknown domain, or when the test sentences use up every sentence that
        contains some word (the grammars allow several thousand test sentences).

    Examples
    --------
    >>> test, train = split_test_and_train("clinical", n_test=20, n_train=200, seed=0)
    >>> len(test), len(train) >= 200, set(test).isdisjoint(train)
    (20, True, True)
    >>> vocabulary("clinical") <= {w for s in train for w in s.split()}
    True
    """
    g = _grammar(domain)
    _check_count("n_test", n_test)
    _check_count("n_train", n_train)
    test = _distinct(domain, n_test, _rng(domain, seed, "sentences"))
    rng = _rng(domain, seed, "train")
    train = _distinct(domain, n_train, rng, exclude=set(test))
    taken = set(test) | set(train)
    covered = {w for s in train for w in s.split()}
    reach = _reach(domain)

    def add_steered(templates: list[tuple[tuple[bool, str], ...]], target: tuple[str, int] | None) -> None:
        # Every derivation through a small template can already be a test sentence;
        # then the word may still be reached through another template or filler, so a
        # failure here is only an error if the final check finds the word uncovered.
        for _ in range(200):
            s = _expand(domain, rng.choice(templates), rng, target)
            if s not in taken:
                taken.add(s)
                train.append(s)
                covered.update(s.split())
                return

    for slot, fillers in g.slots.items():
        for i, filler in enumerate(fillers):
            if set(_literal_words(filler)) <= covered:
                continue
            via = [t for t in g.templates if _reaches(t, slot, reach)]
            if via:
                add_steered(via, (slot, i))
    for template in g.templates:
        if not set(_literal_words(template)) <= covered:
            add_steered([template], None)
    missing = _vocabulary(domain) - covered
    if missing:
        raise InputError(
            f"the {domain!r} grammar cannot cover the words {', '.join(sorted(missing)[:10])} "
            f"in the training text without repeating one of the {n_test} test sentences",
            fix="ask for fewer test sentences",
        )
    return test, train


@functools.cache
def _vocabulary(domain: str) -> frozenset[str]:
    g = _grammar(domain)
    reach = _reach(domain)
    used = set().union(*(reach[v] for t in g.templates for is_slot, v in t if is_slot))
    words = {w for t in g.templates for w in _literal_words(t)}
    for slot in used:
        for filler in g.slots[slot]:
            words.update(_literal_words(filler))
    return frozenset(words)


def vocabulary(domain: str) -> set[str]:
    """Every word the domain's grammar can produce.

    Examples
    --------
    >>> v = vocabulary("clinical")
    >>> {"patient", "milligrams", "hundred"} <= v
    True
    >>> len(v) > 300
    True
    """
    return set(_vocabulary(domain))
